"""OLED screens as pure functions of a view state, and button gestures decoded into actions."""
