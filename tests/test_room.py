"""Rooms of per-attendee VMs (`workshop class room`): the roster, cloud-init user-data checked by
cloud-init's own `cloud-init schema`, the provisioning script through shellcheck, passwords, and
the printable cards. The first boot itself runs in tests/test_offline_bundle.py."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest
import yaml

from labs.classroom import room

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE = {"bundle_url": "http://10.0.0.5:8100/bundle.tar", "class_url": "http://10.0.0.5:8100", "code": "a1b2c3"}


def roster(tmp_path, text: str) -> str:
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def workshop(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workshop_tui", *args], capture_output=True, text=True, timeout=120)


def test_a_roster_is_a_csv_with_names_and_addresses_or_one_name_a_line(tmp_path):
    csv_people = room.read_roster(roster(tmp_path, "Name,Address\nAda Lovelace,10.0.0.11\nZoë O'Brien,\n"))
    assert [(a["name"], a["slug"], a["address"]) for a in csv_people] == [
        ("Ada Lovelace", "ada-lovelace", "10.0.0.11"), ("Zoë O'Brien", "zoe-obrien", "")]  # fmt: skip
    lines = room.read_roster(roster(tmp_path, "# the morning group\nAda Lovelace\n\nAda  Lovelace\nAda Lovelace\n"))
    assert [a["slug"] for a in lines] == ["ada-lovelace", "ada-lovelace-2", "ada-lovelace-3"]
    excel = room.read_roster(roster(tmp_path, "\ufeffName,Address\nAda Lovelace,10.0.0.11\n"))  # "CSV UTF-8"
    assert [(a["name"], a["address"]) for a in excel] == [("Ada Lovelace", "10.0.0.11")]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("name\n<script>\n", "roster line 1"),
        ("name,address\nAda,10.0.0.1; rm -rf /\n", "is not a host name or IP address"),
        ("\n# nobody yet\n", "has no names"),
    ],
)
def test_a_bad_roster_gets_one_line_naming_the_problem(tmp_path, text, says):
    path = roster(tmp_path, text)
    result = workshop("class", "room", path, "--out", str(tmp_path / "room"), "--bundle-url", BUNDLE["bundle_url"])
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and says in result.stderr
    assert not (tmp_path / "room" / "room.json").exists()


def test_options_are_checked_before_anything_is_written(tmp_path):
    path = roster(tmp_path, "Ada Lovelace\n")
    out = str(tmp_path / "room")
    for args, says in [
        ((), "--bundle-url URL (offline) or --repo URL"),
        (("--bundle-url", "http://x/b.tar", "--repo", "https://example.org/w.git"), "--bundle-url URL"),
        (("--bundle-url", "file:///etc/shadow"), "a URL such as"),
        (("--bundle-url", "http://x/b.tar", "--class-url", "http://x:8100", "--code", "nope"), "class code"),
        (("--bundle-url", "http://x/b.tar", "--login", "Root Admin"), "a Linux user name"),
    ]:
        result = workshop("class", "room", path, "--out", out, *args)
        assert result.returncode == 2 and says in result.stderr, (args, result.stderr)
    assert not os.path.exists(out)


@pytest.fixture
def made(tmp_path) -> tuple[dict, str]:
    out = str(tmp_path / "room")
    return room.make_room(roster(tmp_path, "name,address\nAda Lovelace,10.0.0.11\nZoë O'Brien,\n"), out, BUNDLE), out


def user_data_files(out: str) -> list[str]:
    return sorted(os.path.join(out, "user-data", n) for n in os.listdir(os.path.join(out, "user-data")))


@pytest.mark.skipif(not shutil.which("cloud-init"), reason="cloud-init (for `cloud-init schema`) comes with make test")
@pytest.mark.parametrize("source", ["bundle", "repo"])
def test_user_data_is_valid_cloud_config_by_cloud_inits_own_schema(tmp_path, source):
    options = BUNDLE if source == "bundle" else {"repo": "https://example.org/workshop.git", "ref": "v1"}
    out = str(tmp_path / "room")
    room.make_room(roster(tmp_path, "Ada Lovelace\nZoë O'Brien\n"), out, options)
    for path in user_data_files(out):
        result = subprocess.run(["cloud-init", "schema", "--config-file", path], capture_output=True, text=True)
        assert result.returncode == 0 and "Valid cloud-config" in result.stdout, result.stdout + result.stderr
    # ... and the validator does catch a mistake in such a file
    broken = tmp_path / "broken.yaml"
    broken.write_text(open(path).read().replace("lock_passwd: false", "lock_passwd: maybe"))
    result = subprocess.run(["cloud-init", "schema", "--config-file", str(broken)], capture_output=True, text=True)
    assert result.returncode != 0 and "lock_passwd" in result.stdout + result.stderr


@pytest.mark.parametrize("source", ["bundle", "repo"])
def test_the_first_boot_script_passes_shellcheck_and_uses_vagrants_provisioning(tmp_path, source):
    options = BUNDLE if source == "bundle" else {"repo": "https://example.org/workshop.git"}
    out = str(tmp_path / "room")
    room.make_room(roster(tmp_path, "Zoë O'Brien\n"), out, options)
    config = yaml.safe_load(open(user_data_files(out)[0]))
    (entry,) = config["write_files"]
    assert config["runcmd"] == [[entry["path"]]] and entry["permissions"] == "0755"
    script = tmp_path / "workshop-provision"
    script.write_text(entry["content"])
    result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert "vagrant/provision.sh" in entry["content"]
    assert ("WORKSHOP_BUNDLE=" in entry["content"]) == (source == "bundle")
    # the name goes through the shell quoted: no word splitting, no quote breaking out
    if source == "bundle":
        assert "a1b2c3 'Zoë O'\"'\"'Brien'" in entry["content"]


def test_logins_carry_a_password_hash_that_matches_the_card(made):
    made_room, out = made
    for attendee in made_room["attendees"]:
        path = os.path.join(out, "user-data", f"{attendee['slug']}.yaml")
        login = yaml.safe_load(open(path))["users"][1]
        assert login["name"] == "learner" and login["gecos"] == attendee["name"]
        assert attendee["password"] not in open(path).read()  # only the hash travels in user-data
        salt = login["hashed_passwd"].split("$")[2]
        again = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, attendee["password"]],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        assert again == login["hashed_passwd"]


def test_files_with_passwords_are_private_and_a_rerun_keeps_passwords_and_adds_addresses(made, tmp_path):
    made_room, out = made
    for path in [os.path.join(out, "room.json"), os.path.join(out, "cards.html"), *user_data_files(out)]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    again = room.make_room(roster(tmp_path, "name,address\nAda Lovelace,10.0.0.11\nZoë O'Brien,10.0.0.12\n"),
                           out, BUNDLE)  # fmt: skip
    assert [a["password"] for a in again["attendees"]] == [a["password"] for a in made_room["attendees"]]
    assert json.load(open(os.path.join(out, "room.json")))["attendees"][1]["address"] == "10.0.0.12"
    assert "ssh learner@10.0.0.12" in open(os.path.join(out, "cards.html")).read()
    smaller = room.make_room(roster(tmp_path, "name\nAda Lovelace\n"), out, BUNDLE)  # Zoë cannot come
    assert [os.path.basename(p) for p in user_data_files(out)] == ["ada-lovelace.yaml"]
    assert "Zo" not in open(os.path.join(out, "cards.html"), encoding="utf-8").read()
    assert smaller["attendees"][0]["password"] == made_room["attendees"][0]["password"]


@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium comes with make test")
def test_cards_escape_names_and_print_to_a_pdf(made, tmp_path):
    made_room, out = made
    page = open(os.path.join(out, "cards.html"), encoding="utf-8").read()
    assert "Zoë O&#x27;Brien" in page and page.count('class="card"') == 2
    for attendee in made_room["attendees"]:
        assert attendee["password"] in page and f"workshop-{attendee['slug']}" in page
    assert "a1b2c3 at http://10.0.0.5:8100" in page
    result = workshop("class", "room", str(tmp_path / "roster.csv"), "--out", out, "--pdf", *sum(
        ([f"--{k.replace('_', '-')}", v] for k, v in BUNDLE.items()), []))  # fmt: skip
    assert result.returncode == 0, result.stderr
    with open(os.path.join(out, "cards.pdf"), "rb") as f:
        assert f.read(5) == b"%PDF-"
    assert os.stat(os.path.join(out, "cards.pdf")).st_mode & 0o077 == 0  # passwords: the owner's eyes only
    assert "multipass launch" in result.stdout


def test_a_loopback_url_is_made_but_warned_about(tmp_path):
    path = roster(tmp_path, "Ada Lovelace\n")
    loopback = ("--bundle-url", "http://127.0.0.1:8100/bundle.tar", "--class-url", "http://localhost:8100",
                "--code", "a1b2c3")  # fmt: skip
    result = workshop("class", "room", path, "--out", str(tmp_path / "room"), *loopback)
    assert result.returncode == 0 and (tmp_path / "room" / "room.json").exists()
    warnings = [line for line in result.stderr.splitlines() if line.startswith("workshop: warning:")]
    assert len(warnings) == 2 and "--class-url http://localhost:8100 is this machine's loopback" in warnings[1]
    quiet = workshop("class", "room", path, "--out", str(tmp_path / "room2"), "--bundle-url", BUNDLE["bundle_url"])
    assert quiet.returncode == 0 and "warning" not in quiet.stderr
