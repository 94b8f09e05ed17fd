"""Running images: QEMU argv (pure), accelerator probe, host clock facts, the runner."""
