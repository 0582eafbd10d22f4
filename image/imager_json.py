"""Print image/imager.json: an entry for Raspberry Pi Imager's custom repository."""

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    image, compressed, version = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    entry = {
        "name": f"Pigeon Node {version}",
        "description": "Neighbourhood relay for the Pigeon encrypted BLE mesh messenger",
        "url": f"https://DOWNLOAD-HOST.example/{compressed.name}",
        "icon": "",
        "release_date": datetime.now(UTC).date().isoformat(),
        "extract_size": image.stat().st_size,
        "extract_sha256": sha256(image),
        "image_download_size": compressed.stat().st_size,
        "image_download_sha256": sha256(compressed),
        "devices": ["pi3-64bit", "pi4-64bit", "pi2w"],
        "init_format": "none",
    }
    json.dump({"os_list": [entry]}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
