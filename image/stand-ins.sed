# The node on its stand-ins (simulated radio, PNG display, virtual buttons) in /etc/pigeon/
# node.toml: what QEMU's virt board offers in place of a Pi's radio, panel and buttons.
/^\[radio\]/,/^\[/ s/^kind = .*/kind = "sim"/
/^\[display\]/,/^\[/ s/^kind = .*/kind = "png"/
/^\[buttons\]/,/^\[/ s/^kind = .*/kind = "virtual"/
