"""`import pigeon.drivers` and the OLED room work without luma's I2C stack or RPi.GPIO."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"luma", "RPi", "smbus2", "lgpio"}:
                raise ImportError(f"{name} is not on this machine")
            return None

    sys.meta_path.insert(0, Refuse())
    import pigeon.drivers
    import pigeon.ui.oled
    from pigeon.drivers.errors import DeviceNotFound

    pigeon.drivers.PngDisplay().show(pigeon.ui.oled.render(
        pigeon.ui.oled.UiMachine(pigeon.ui.oled.ViewState("n", "https://n/"), 0.0).view(0.0)))
    for build in (pigeon.drivers.Ssd1306Display,
                  lambda: pigeon.drivers.GpioButtons().start(print)):
        try:
            build()
        except DeviceNotFound:
            pass
        else:
            raise SystemExit("a hardware driver started without its library")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"luma", "RPi", "smbus2"})
    print("loaded:", loaded)
    """
)


def test_drivers_and_screens_import_without_hardware_libraries() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "loaded: []"
