"""Hardware drivers and their stand-ins: the only place luma and RPi.GPIO appear."""
