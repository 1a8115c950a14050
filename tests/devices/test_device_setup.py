"""``edgesep device setup|status|stop pi-emulated``: a real user-level sshd on 127.0.0.1, the real ssh client, the
real arm64 Python under qemu.  Every test has its own $EDGESEP_CACHE (the sshd's keys and state live there)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesep.cli.main import main
from edgesep.devices import open_device, setups
from edgesep.devices.emulated import QEMU, find_tool
from edgesep.devices.pi_emulated import sshd_config_text
from edgesep.errors import DeviceError, InputError
from edgesep.results import RunResults, results_paths

NOT_RUNNING = "edgesep: error: device 'pi-emulated' is not running: start it with `edgesep device setup pi-emulated`"


@pytest.fixture()
def own_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("EDGESEP_CACHE", str(cache))
    return cache


def edgesep(*argv: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    """The CLI as a user runs it: its own process (so the detached sshd outlives it, as it does for a user)."""
    return subprocess.run([sys.executable, "-m", "edgesep", *argv], capture_output=True, text=True, timeout=timeout_s)


def test_the_registry_names_its_setups_and_refuses_others(own_cache, capsys):
    assert setups.setup_names() == ["android-emulated", "pi-emulated"]
    assert setups.state_dir("pi-emulated") == own_cache / "devices" / "pi-emulated"
    assert main(["device", "setup", "pi-nope"]) == 2
    assert capsys.readouterr().err == "edgesep: error: no emulated device setup named 'pi-nope': use one of android-emulated, pi-emulated\n"


def test_status_and_stop_before_any_setup(own_cache, capsys):
    assert main(["device", "status", "pi-emulated", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["running"] is False and payload["pid"] is None and payload["profile"] == {}
    assert main(["device", "stop", "pi-emulated"]) == 0
    assert capsys.readouterr().out == "pi-emulated: was not running\n"
    assert not (own_cache / "devices").exists()


def test_the_profile_says_how_to_start_it_when_not_running(own_cache):
    with pytest.raises(DeviceError) as raised:
        open_device("pi-emulated")
    assert f"edgesep: error: {raised.value}" == NOT_RUNNING
    # state left by an sshd that died (killed, machine rebooted): named, never trusted
    folder = setups.state_dir("pi-emulated")
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = {"pid": dead.pid, "port": 1, "user": "root", "key": "k", "known_hosts": "kh", "rootfs": "r",
             "sshd_config": str(folder / "sshd_config")}  # fmt: skip
    (folder / "state.json").write_text(json.dumps(state))
    with pytest.raises(DeviceError, match=rf"not running \(its sshd \(pid {dead.pid}\) has exited\): start it with"):
        open_device("pi-emulated")


def test_a_missing_tool_is_one_line_with_the_fix(own_cache, tmp_path, monkeypatch, capsys):
    """PATH without qemu-aarch64-static (ssh and ssh-keygen linked in; sshd is found in /usr/sbin)."""
    if find_tool("ssh") is None or find_tool("ssh-keygen") is None:
        pytest.skip("openssh-client is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ssh", "ssh-keygen"):
        (bin_dir / tool).symlink_to(find_tool(tool))
    monkeypatch.setenv("PATH", str(bin_dir))
    assert find_tool(QEMU) is None
    assert main(["device", "setup", "pi-emulated"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"edgesep: error: {QEMU}")
    assert "`apt-get install qemu-user-static" in err and "`edgesep device setup pi-emulated` again" in err
    assert not (own_cache / "devices").exists()  # nothing was started
    assert main(["device", "setup", "android-emulated"]) == 2  # the emulated phone: the same one line
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"edgesep: error: adb, {QEMU} not found")
    assert "`apt-get install adb qemu-user-static" in err and "`edgesep device setup android-emulated` again" in err


def test_the_generated_sshd_config_is_valid_and_loopback_only(tmp_path):
    """``sshd -t`` (the real parser) accepts it, in a folder with a space; it listens on 127.0.0.1 only and lets in
    one key of one user."""
    sshd = find_tool("sshd")
    if sshd is None or find_tool("ssh-keygen") is None:
        pytest.skip("openssh-server is not installed")
    tmp_path = tmp_path / "edgesep cache"
    tmp_path.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "host_ed25519")], check=True)
    text = sshd_config_text(tmp_path, port=40123, user="root")
    (tmp_path / "sshd_config").write_text(text)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    checked = subprocess.run([sshd, "-t", "-f", str(tmp_path / "sshd_config")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    lines = set(text.splitlines())
    assert {"ListenAddress 127.0.0.1", "PasswordAuthentication no", "AllowUsers root", "AllowTcpForwarding no"} <= lines
    assert f'AuthorizedKeysFile "{tmp_path / "authorized_keys"}"' in lines
    dumped = subprocess.run([sshd, "-T", "-f", str(tmp_path / "sshd_config")], capture_output=True, text=True).stdout
    assert f"hostkey {tmp_path / 'host_ed25519'}" in dumped.splitlines()  # the quotes were parsed, the space kept


def test_a_profile_naming_an_unknown_setup_is_refused(own_cache, tmp_path):
    profile = tmp_path / "mine.toml"
    profile.write_text('name = "mine"\nkind = "ssh"\nhost = "127.0.0.1"\nsetup = "pi-nope"\n')
    with pytest.raises(InputError, match="no emulated device setup named 'pi-nope': use one of android-emulated, pi-emulated"):
        open_device(str(profile))


@pytest.fixture(scope="module")
def default_models(default_run) -> tuple[Path, Path]:
    """The default SepCNN's float32 and int8 .tflite, made the way a newcomer makes them: ``edgesep run`` (the
    session's one run, tests/conftest.py)."""
    assert default_run.done.returncode == 0, default_run.done.stderr[-2000:]
    return default_run.out / "model_float32.tflite", default_run.out / "model_int8.tflite"


def _exited(pid: int) -> bool:
    """Gone, or a zombie its new parent (init) has not reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _file_digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


@pytest.mark.slow
def test_setup_validate_stop_on_the_emulated_pi(arm64_rootfs, default_models, own_cache, tmp_path):
    for tool in ("sshd", "ssh", "ssh-keygen"):
        if find_tool(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install openssh-server openssh-client)")
    float_model, quant_model = default_models
    untouched = [Path.home() / ".ssh" / "authorized_keys", Path.home() / ".ssh" / "known_hosts", Path("/etc/ssh/sshd_config")]
    before = [_file_digest(p) for p in untouched]
    folder = setups.state_dir("pi-emulated")
    try:
        started = edgesep("device", "setup", "pi-emulated")
        assert started.returncode == 0, started.stderr[-2000:]
        assert "pi-emulated: running at " in started.stdout and "the arm64 Python answered 'aarch64'" in started.stdout
        status = json.loads(edgesep("device", "status", "pi-emulated", "--json").stdout)
        assert status["running"] is True and status["profile"]["rootfs"] == str(arm64_rootfs)
        pid, port = status["pid"], status["profile"]["port"]
        assert status["address"] == f"{status['profile']['user']}@127.0.0.1:{port}" and Path(f"/proc/{pid}").exists()
        host_key = (folder / "host_ed25519.pub").read_text().split()
        assert (folder / "known_hosts").read_text() == f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n"
        assert oct((folder / "client_ed25519").stat().st_mode & 0o777) == "0o600"

        again = edgesep("device", "setup", "pi-emulated")
        assert again.returncode == 0 and "already running, reused" in again.stdout and f":{port} " in again.stdout
        assert json.loads(edgesep("device", "status", "pi-emulated", "--json").stdout)["pid"] == pid

        # the emulated arm64 Pi next to this x86 host: same 12 digits, same models
        outputs, tables = {}, {}
        for device in ("pi-emulated", "local"):
            validated = edgesep("validate", "--float", str(float_model), "--quant", str(quant_model), "--data", "digits",
                                "--device", device, "--samples", "12", "--runs", "12", "--warmup", "1", "--threads", "1",
                                "--output-dir", str(tmp_path / device), "--no-report")  # fmt: skip
            assert validated.returncode == 0, validated.stderr[-2000:]
            tables[device] = validated.stdout
            outputs[device] = {tag: RunResults.load(results_paths(tmp_path / device, tag)[0]) for tag in ("float", "quant")}
        assert "on pi-emulated (12 samples) [EMULATED latency]" in tables["pi-emulated"]
        assert "EMULATED latency (qemu): not the speed of the real device" in tables["pi-emulated"]
        assert "EMULATED" not in tables["local"]
        arm, x86 = outputs["pi-emulated"], outputs["local"]
        assert arm["float"].emulated and arm["quant"].emulated and not x86["float"].emulated
        assert arm["float"].device["machine"] == "aarch64" and "emulating aarch64" in arm["float"].device["cpu"]
        float_diff = float(np.max(np.abs(arm["float"].outputs - x86["float"].outputs)))
        quant_diff = float(np.max(np.abs(arm["quant"].outputs - x86["quant"].outputs)))
        print(f"pi-emulated vs local on 12 digits: float max-abs {float_diff:.2e}, int8 max-abs {quant_diff:.2e}")
        assert float_diff < 1e-4
        assert np.array_equal(arm["quant"].outputs.argmax(1), x86["quant"].outputs.argmax(1))
        assert len(arm["quant"].latencies_ms) == 12 and float(np.min(arm["quant"].latencies_ms)) > 0

        stopped = edgesep("device", "stop", "pi-emulated")
        assert stopped.returncode == 0 and stopped.stdout == f"pi-emulated: stopped its sshd (pid {pid})\n"
        assert _exited(pid) and not folder.exists()
        assert json.loads(edgesep("device", "status", "pi-emulated", "--json").stdout)["running"] is False

        refused = edgesep("validate", "--float", str(float_model), "--quant", str(quant_model), "--data", "digits",
                          "--device", "pi-emulated", "--samples", "12")  # fmt: skip
        assert refused.returncode == 2
        assert refused.stderr.rstrip().splitlines()[-1].split("\r")[-1].strip() == NOT_RUNNING
    finally:
        setups.stop("pi-emulated")
    assert [_file_digest(p) for p in untouched] == before
