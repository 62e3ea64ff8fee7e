"""A room of per-attendee VMs: cloud-init user-data for each, and printable attendee cards.

The instructor makes the VMs with the tooling they already have — a cloud's console or CLI,
Proxmox, ``virt-install --cloud-init user-data=FILE``, ``multipass launch --cloud-init FILE`` —
and gives each VM its own user-data file. On first boot cloud-init creates the attendee's login,
then runs ``/usr/local/sbin/workshop-provision``, which installs the workshop exactly as the
Vagrant VM gets it (``vagrant/provision.sh``), from the offline bundle that ``workshop class
serve --bundle`` hands out (no internet needed) or from a git repository, and joins the class.

``workshop class room ROSTER.csv --out DIR`` writes ``DIR/user-data/NAME.yaml`` for each attendee,
``DIR/cards.html`` to print and cut, and ``DIR/room.json`` (the passwords, readable by root
only). Run it again after filling in the VMs' addresses: passwords are kept, cards are redone.
Nothing here talks to a cloud or to the VMs.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import secrets
import subprocess
import unicodedata

from labs.classroom.protocol import Refused, clean_name

LOGIN = "learner"
WORKDIR = "/opt/container-internals-workshop"
# Passwords are read off a card and typed: no 0/o, 1/l/i look-alikes.
PASSWORD_LETTERS = "abcdefghjkmnpqrstuvwxyz23456789"


class RoomError(ValueError):
    """A problem with the roster or the options; the message says what to fix."""


def slug(name: str) -> str:
    """``Zoë O'Brien`` -> ``zoe-obrien``: a hostname part and a file name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9 -]", "", ascii_name.lower()).split()
    return "-".join(words)[:40].strip("-") or "attendee"


def read_roster(path: str) -> list[dict]:
    """Attendees from a CSV with a ``name`` column and optionally ``address``, or one name a line."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: Excel's "CSV UTF-8" starts with a BOM
            text = f.read()
    except OSError as e:
        raise RoomError(f"cannot read the roster {path}: {e.strerror}") from None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if lines and "name" in [c.strip().lower() for c in lines[0].split(",")]:
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(lines)]
    else:
        rows = [{"name": line.strip()} for line in lines]
    if not rows:
        raise RoomError(f"the roster {path} has no names: one name a line, or a CSV with a `name` column")
    attendees, slugs = [], set()
    for number, row in enumerate(rows, start=1):
        try:
            name = clean_name(row.get("name", ""))
        except Refused as e:
            raise RoomError(f"roster line {number}: {row.get('name', '')!r}: {e}") from None
        address = row.get("address", "")
        if address and not re.fullmatch(r"[A-Za-z0-9.:-]{1,253}", address):
            raise RoomError(f"roster line {number}: address {address!r} is not a host name or IP address")
        base = unique = slug(name)
        count = 2
        while unique in slugs:  # two attendees with the same name get -2, -3, ...
            unique, count = f"{base}-{count}", count + 1
        slugs.add(unique)
        attendees.append({"name": name, "slug": unique, "address": address})
    return attendees


def new_password() -> str:
    return "-".join("".join(secrets.choice(PASSWORD_LETTERS) for _ in range(4)) for _ in range(3))


def hash_password(password: str) -> str:
    """SHA-512 crypt, as /etc/shadow holds it (``openssl passwd -6``): user-data carries no plain text."""
    try:
        result = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True,
                                text=True, check=True)  # fmt: skip
    except FileNotFoundError:
        raise RoomError("openssl is needed to hash the passwords: apt-get install openssl") from None
    return result.stdout.strip()


def provision_script(room: dict, attendee: dict) -> str:
    """What the VM runs on first boot, after cloud-init made the login: set-up, then join."""
    if room.get("bundle_url"):
        fetch = f"""\
# The offline bundle, from the instructor's class service. python3 is there (cloud-init is
# Python); the service may come up after the VM: try for five minutes.
python3 - {_sh(room["bundle_url"])} "$DIR/bundle.tar" <<'EOF'
import shutil, sys, time, urllib.request
for attempt in range(30):
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=60) as answer, open(sys.argv[2], "wb") as f:
            shutil.copyfileobj(answer, f)
        break
    except OSError as e:
        print(f"workshop-provision: {{sys.argv[1]}}: {{e}}; trying again in 10 s", flush=True)
        time.sleep(10)
else:
    sys.exit("workshop-provision: could not download the bundle")
EOF
tar -xf "$DIR/bundle.tar" -C "$DIR"
rm "$DIR/bundle.tar"
SOURCE=$DIR/container-internals-workshop-bundle/source
WORKSHOP_BUNDLE=$DIR/container-internals-workshop-bundle "$SOURCE/vagrant/provision.sh" "$SOURCE"
"""
    else:
        fetch = f"""\
command -v git >/dev/null || {{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git; }}
SOURCE=$DIR/src
[ -d "$SOURCE/.git" ] || git clone --depth 1 --branch {_sh(room["ref"])} {_sh(room["repo"])} "$SOURCE"
"$SOURCE/vagrant/provision.sh" "$SOURCE"
"""
    join = ""
    if room.get("class_url"):
        args = " ".join(_sh(a) for a in (room["class_url"], room["code"], attendee["name"]))
        join = f"""\
# Join the class; if the class service is not up, the attendee can run the command later.
join=(/usr/local/bin/workshop join {args})
"${{join[@]}}" || echo "workshop-provision: could not join the class yet; later, run: ${{join[*]}}"
"""
    return f"""\
#!/bin/bash
# Written by `workshop class room` for {attendee["name"]}: set this VM up as vagrant/provision.sh
# does, then join the class. Runs once, on first boot; the log is /var/log/workshop-provision.log.
set -euo pipefail
exec >>/var/log/workshop-provision.log 2>&1
DIR={WORKDIR}
mkdir -p "$DIR"
{fetch}{join}echo "workshop-provision: done"
"""


def user_data(room: dict, attendee: dict) -> str:
    """The #cloud-config for one attendee's VM."""
    login = {
        "name": room["login"],
        "gecos": attendee["name"],
        "groups": ["sudo"],
        "shell": "/bin/bash",
        # The workshop runs as root through sudo (namespaces, mounts, cgroups need it).
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
        "lock_passwd": False,
        "hashed_passwd": attendee["password_hash"],
    }
    if room.get("ssh_keys"):
        login["ssh_authorized_keys"] = room["ssh_keys"]
    config = {
        "hostname": f"workshop-{attendee['slug']}",
        "users": ["default", login],
        "ssh_pwauth": True,
        "write_files": [
            {
                "path": "/usr/local/sbin/workshop-provision",
                "permissions": "0755",
                "content": provision_script(room, attendee),
            }
        ],  # fmt: skip
        "runcmd": [["/usr/local/sbin/workshop-provision"]],
        "final_message": "Container Internals Workshop VM: provisioning log in /var/log/workshop-provision.log",
    }
    import yaml

    class LiteralDumper(yaml.SafeDumper):
        """Multi-line strings (the script) as YAML's literal blocks: readable, not one escaped line."""

    LiteralDumper.add_representer(
        str,
        lambda dumper, text: dumper.represent_scalar(
            "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
        ),
    )
    header = f"#cloud-config\n# Container Internals Workshop: the VM of {attendee['name']} (`workshop class room`)\n"
    return header + yaml.dump(config, Dumper=LiteralDumper, sort_keys=False, width=1000, allow_unicode=True)


def _sh(text: str) -> str:
    import shlex

    return shlex.quote(text)


def loopback_options(options: dict) -> list[str]:
    """The URL options that name this machine's loopback (127.0.0.1, localhost, ::1): inside an
    attendee's VM they name the VM itself, not the instructor's machine."""
    import ipaddress
    import urllib.parse

    found = []
    for key in ("bundle_url", "class_url"):
        host = urllib.parse.urlsplit(options.get(key) or "").hostname or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            found.append(f"--{key.replace('_', '-')} {options[key]}")
    return found


def make_room(roster: str, out: str, options: dict) -> dict:
    """Write user-data for every attendee, the cards and room.json; keep earlier passwords."""
    if bool(options.get("bundle_url")) == bool(options.get("repo")):
        raise RoomError("say where the VMs get the workshop: --bundle-url URL (offline) or --repo URL")
    for key in ("bundle_url", "repo", "class_url"):
        value = options.get(key) or ""
        if value and not re.fullmatch(r"(https?|git|ssh)://[^\s'\"]+|[\w.-]+@[\w.-]+:[^\s'\"]+", value):
            raise RoomError(f"--{key.replace('_', '-')} {value!r}: a URL such as http://10.0.0.5:8100/...")
    if options.get("class_url") and not re.fullmatch(r"[0-9a-f]{6}", options.get("code") or ""):
        raise RoomError("--code: the class code `workshop class serve` printed (6 hex digits)")
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", options.get("login") or LOGIN):
        raise RoomError(f"--login {options.get('login')!r}: a Linux user name (lower case letters, digits, - and _)")
    attendees = read_roster(roster)
    os.makedirs(os.path.join(out, "user-data"), exist_ok=True)
    room_file = os.path.join(out, "room.json")
    earlier = {}
    if os.path.exists(room_file):
        with open(room_file) as f:
            earlier = {a["slug"]: a for a in json.load(f)["attendees"]}
    room = {
        "login": options.get("login") or LOGIN, "code": options.get("code") or "",
        "class_url": options.get("class_url") or "", "bundle_url": options.get("bundle_url") or "",
        "repo": options.get("repo") or "", "ref": options.get("ref") or "main",
        "ssh_keys": options.get("ssh_keys") or [], "attendees": [],
    }  # fmt: skip
    for attendee in attendees:
        kept = earlier.get(attendee["slug"], {})
        attendee["password"] = kept.get("password") or new_password()
        attendee["password_hash"] = kept.get("password_hash") or hash_password(attendee["password"])
        room["attendees"].append(attendee)
        _write_private(os.path.join(out, "user-data", f"{attendee['slug']}.yaml"), user_data(room, attendee))
    # Made again for a changed roster: no VM file or printed card is left for who is not on it.
    current = {f"{a['slug']}.yaml" for a in room["attendees"]}
    for name in os.listdir(os.path.join(out, "user-data")):
        if name.endswith(".yaml") and name not in current:
            os.unlink(os.path.join(out, "user-data", name))
    if os.path.exists(os.path.join(out, "cards.pdf")):
        os.unlink(os.path.join(out, "cards.pdf"))  # --pdf prints it anew from the new cards.html
    _write_private(room_file, json.dumps(room, indent=2) + "\n")
    _write_private(os.path.join(out, "cards.html"), cards_html(room))
    return room


def _write_private(path: str, text: str) -> None:
    """Root (or the instructor) only: these files hold passwords or their hashes."""
    fd = os.open(f"{path}.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(f"{path}.tmp", path)


CARD_CSS = """
@page { size: A4; margin: 10mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 0; color: #111; }
.sheet { display: grid; grid-template-columns: 1fr 1fr; gap: 0; }
.card { border: 1px dashed #888; padding: 6mm 7mm; height: 62mm; box-sizing: border-box;
        break-inside: avoid; page-break-inside: avoid; overflow: hidden; }
.card h1 { font-size: 10pt; margin: 0 0 2mm; color: #1d4e89; letter-spacing: .04em; text-transform: uppercase; }
.card .who { font-size: 15pt; font-weight: bold; margin-bottom: 3mm; }
.card dl { display: grid; grid-template-columns: 24mm 1fr; margin: 0; font-size: 10pt; row-gap: 1.2mm; }
.card dt { color: #555; }
.card dd { margin: 0; font-family: "DejaVu Sans Mono", monospace; overflow-wrap: anywhere; }
.card .then { margin-top: 3mm; font-size: 9pt; color: #333; }
"""


def cards_html(room: dict) -> str:
    """One card per attendee, eight to an A4 page: print, cut along the dashes, hand out."""
    cards = []
    for a in room["attendees"]:
        hostname = f"workshop-{a['slug']}"
        machine = f"{a['address']} ({hostname})" if a["address"] else f"{hostname} (ask the instructor for its address)"
        rows = [("Machine", machine), ("Login", room["login"]), ("Password", a["password"]),
                ("Connect", f"ssh {room['login']}@{a['address'] or 'ADDRESS'}")]  # fmt: skip
        if room["class_url"]:
            rows.append(("Class", f"{room['code']} at {room['class_url']} (already joined)"))
        details = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)
        cards.append(
            f'<section class="card"><h1>Container Internals Workshop</h1>'
            f'<div class="who">{html.escape(a["name"])}</div><dl>{details}</dl>'
            f'<div class="then">Then type <b>workshop</b> and pick the first lab.</div></section>'
        )
    head = f'<head><meta charset="utf-8"><title>Attendee cards</title><style>{CARD_CSS}</style></head>'
    body = '<body><main class="sheet">\n' + "\n".join(cards) + "\n</main></body>"
    return f'<!doctype html>\n<html lang="en">{head}{body}</html>\n'


def print_to_pdf(html_path: str, pdf_path: str) -> None:
    """The cards as a PDF, printed by a headless Chromium (if this machine has one)."""
    import shutil

    browser = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        raise RoomError("no Chromium to print the PDF with: open cards.html in a browser and print it instead")
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
         f"--print-to-pdf={pdf_path}", f"file://{os.path.abspath(html_path)}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if result.returncode != 0 or not os.path.exists(pdf_path):
        raise RoomError(f"Chromium could not print the cards: {result.stderr.strip()[-200:]}")
    os.chmod(pdf_path, 0o600)  # the cards carry every attendee's password, as cards.html does
