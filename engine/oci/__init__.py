"""minibox as an OCI runtime: the command line that container managers (podman) call.

``minibox run`` is one front door to the engine; this is the other. It reads a bundle's
``config.json`` (``config.py``), maps it onto the same process, namespace, cgroup and mount code
(``runtime.py``; the mounts in ``engine/rootfs/oci.py``, seccomp in ``engine/seccomp.py``) and
offers runc's command line (``cli.py``, installed as ``minibox-runc``), so that
``podman --runtime minibox-runc run ...`` runs containers on it.
"""
