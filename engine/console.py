"""Terminals for ``-t``: a pseudo-terminal made inside the container, its master end sent out.

As runc does with ``--console-socket``, the pty is opened from the container's own ``/dev/ptmx``
(its private devpts instance), so inside, ``tty`` prints ``/dev/pts/0``. The container's process
keeps the slave end as its controlling terminal; the master end travels to minibox over a Unix
socket (``SCM_RIGHTS`` passes an open file descriptor between processes). minibox then copies
bytes between the user's terminal (in raw mode) and the master, and forwards window size changes.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios

TIOCGPTN = 0x80045430  # get the pty number (ptsname)
TIOCSPTLCK = 0x40045431  # lock/unlock the slave (unlockpt)


def open_container_pty() -> tuple[int, int]:
    """In the container: open a new pty from /dev/ptmx; return (master, slave)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))[0]
    slave = os.open(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY)
    return master, slave


def become_terminal_owner(slave: int) -> None:
    """Make ``slave`` the controlling terminal and stdin/stdout/stderr of this process."""
    if os.getsid(0) != os.getpid():
        os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def send_fd(sock_fd: int, fd: int) -> None:
    import socket

    with socket.socket(fileno=os.dup(sock_fd)) as sock:
        socket.send_fds(sock, [b"pty"], [fd])


def receive_fd(sock_fd: int) -> int:
    import socket

    with socket.socket(fileno=os.dup(sock_fd)) as sock:
        _, fds, _, _ = socket.recv_fds(sock, 16, 1)
    if not fds:
        raise OSError("the container did not send its terminal")
    return fds[0]


def set_window_size(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def copy_window_size(from_fd: int, to_fd: int) -> None:
    try:
        size = fcntl.ioctl(from_fd, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(to_fd, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def proxy(master: int, stdin_fd: int = 0, stdout_fd: int = 1) -> None:
    """Copy user terminal <-> pty master until the container side closes. Raw mode if a tty."""
    import select
    import signal
    import tty

    saved = None
    if os.isatty(stdin_fd):
        saved = termios.tcgetattr(stdin_fd)
        tty.setraw(stdin_fd, termios.TCSANOW)  # TCSAFLUSH would drop what the user typed ahead
        copy_window_size(stdin_fd, master)
        signal.signal(signal.SIGWINCH, lambda *_: copy_window_size(stdin_fd, master))
    readers = [master, stdin_fd] if stdin_fd >= 0 else [master]
    try:
        while True:
            try:
                ready, _, _ = select.select(readers, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave end is closed, the container's side is gone
                    data = b""
                if not data:
                    return
                os.write(stdout_fd, data)
            if stdin_fd in ready:
                data = os.read(stdin_fd, 65536)
                if data:
                    os.write(master, data)
                else:
                    readers.remove(stdin_fd)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
            signal.signal(signal.SIGWINCH, signal.SIG_DFL)
