"""The two screens the owner uses: the OLED and the local web page."""
