"""Device profiles (devices/*.toml) and open_device's name/URL resolution."""

from __future__ import annotations

import pytest

from edgesep.devices import open_device
from edgesep.devices.adb import AdbDevice
from edgesep.devices.local import LocalDevice
from edgesep.devices.profiles import available_profiles, load_profile
from edgesep.devices.ssh import SshDevice
from edgesep.errors import ConfigError, InputError


def test_shipped_profiles_load():
    assert {"local", "rpi4", "rpi5", "android", "android-emulated", "pi-emulated"} <= set(available_profiles())
    rpi4 = open_device("rpi4")
    assert isinstance(rpi4, SshDevice) and rpi4.user == "pi" and rpi4.port == 22
    assert load_profile("rpi5").expect == {"machine": "aarch64", "cores": 4}
    android = open_device("android")
    assert isinstance(android, AdbDevice) and android.benchmark_model == "/data/local/tmp/benchmark_model"
    assert isinstance(open_device("local"), LocalDevice)


def test_urls():
    ssh = open_device("ssh://pi@192.168.1.20:2222")
    assert (ssh.host, ssh.user, ssh.port, ssh.address) == ("192.168.1.20", "pi", 2222, "pi@192.168.1.20:2222")
    assert open_device("adb://R58M123ABC").serial == "R58M123ABC"
    with pytest.raises(InputError, match="bad ssh URL"):
        open_device("ssh://")


def test_profile_file_and_overrides(tmp_path):
    path = tmp_path / "board.toml"
    path.write_text('name = "board"\nkind = "ssh"\nhost = "10.0.0.5"\npython = "python3.11"\n')
    device = open_device(str(path), overrides={"port": 2200, "key": tmp_path / "k"})
    assert device.host == "10.0.0.5" and device.port == 2200 and device.python == ("python3.11",)
    assert device.key == tmp_path / "k"


@pytest.mark.parametrize(
    "body,message",
    [
        ('name = "x"\nkind = "ssh"\nhots = "a"\n', "unknown key 'hots'"),
        ('name = "x"\nkind = "serial"\n', "kind must be one of local, ssh, adb"),
        ('name = "x"\nkind = "ssh"\nport = "22"\n', "'port' must be int, got str"),
        ('kind = "ssh"\n', "missing key 'name'"),
        ('name = "x"\nkind = "ssh"\npython = []\n', "'python' must be a command list"),
        ('name = "x"\nkind = [\n', "invalid TOML"),
    ],
)
def test_bad_profiles(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message):
        open_device(str(path))


def test_unknown_name_lists_profiles():
    with pytest.raises(InputError, match=r"unknown device 'rpi9'.*rpi4.*ssh://user@host:port"):
        open_device("rpi9")


def test_emulated_profile_needs_rootfs(tmp_path):
    from edgesep.errors import DeviceError

    with pytest.raises(DeviceError, match="arm64 rootfs is not built"):
        open_device("pi-emulated-local", overrides={"rootfs": str(tmp_path / "none")})


def test_profiles_are_package_data_that_a_wheel_ships():
    """Profiles are found through importlib.resources inside the package (not through the repository), and
    pyproject's package-data glob covers every one of them, so a non-editable install has them all."""
    import fnmatch
    import tomllib
    from importlib import resources
    from pathlib import Path

    import edgesep
    from edgesep.devices.profiles import profiles_dir

    shipped = resources.files("edgesep.devices") / "builtin"
    assert str(profiles_dir()) == str(shipped)
    package_root = Path(edgesep.__file__).parent
    files = [Path(str(shipped / f"{name}.toml")) for name in available_profiles()]
    pyproject = tomllib.loads((package_root.parent / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["edgesep"]
    assert all(any(fnmatch.fnmatch(str(f.relative_to(package_root)), g) for g in globs) for f in files)
    assert (package_root / "py.typed").is_file()


@pytest.mark.parametrize(
    "url,message",
    [
        ("ssh://pi@[fe80::1:22", "bad ssh URL .*Invalid IPv6 URL"),
        ("ssh://pi@host:0", "bad port 0"),
        ("ssh://pi@[::1]:0", "bad port 0"),
        ("adb://R58;rm -rf x", "bad adb serial 'R58;rm -rf x'"),
        ("adb://-s", "bad adb serial '-s'"),
    ],
)
def test_device_strings_are_checked_before_any_program_runs(url, message):
    """#14 class 5: an unparsable IPv6 literal was a ValueError traceback, port 0 became 22, and an adb serial
    with shell text started the adb server."""
    with pytest.raises(InputError, match=message):
        open_device(url)


def test_good_device_strings_still_parse():
    assert open_device("ssh://pi@[::1]:2222").port == 2222
    assert open_device("adb://192.168.1.5:5555").serial == "192.168.1.5:5555"
    assert open_device("adb://emulator-5554").serial == "emulator-5554"


def test_profile_port_and_serial_are_checked(tmp_path):
    bad_port = tmp_path / "p.toml"
    bad_port.write_text('name = "p"\nkind = "ssh"\nhost = "h"\nport = 0\n')
    with pytest.raises(ConfigError, match="'port' must be between 1 and 65535"):
        open_device(str(bad_port))
    bad_serial = tmp_path / "a.toml"
    bad_serial.write_text('name = "a"\nkind = "adb"\nserial = "x y"\n')
    with pytest.raises(InputError, match="bad adb serial 'x y'"):
        open_device(str(bad_serial))
