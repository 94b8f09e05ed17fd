-- engitor's kernel for one-app VMs: Debian's linux-source-6.1 configured with `make tinyconfig`
-- and the fragment beside this file (what it holds and why: its comments and README.md here).
-- `engitor kernel build` runs it in the script scope (sh, fs on the build folder, log) with `k`:
-- k.source (the unpacked source, with `patches` applied, never written), k.out (the build
-- folder, make O=), k.fragment, k.jobs, k.make(targets...) (make with reproducible KBUILD_*
-- values, shown as a summary) and k.check_config() (every option of the fragment took effect).
return {
  description = "tinyconfig + engitor-min.config: no modules, virtio-mmio built in, PVH",
  source = "linux-source-6.1",
  config = "engitor-min.config",
  -- A boot parameter for the APIC timer's rate, which QEMU knows and the kernel would measure
  -- for 100 ms of every boot (the patch's header says why).
  patches = {"lapic-timer-period.patch", "virtio-console-rx-buffers.patch"},
  build = function(k)
    local config = k.out .. "/.config"
    k.make("tinyconfig")
    -- -m: merge only; olddefconfig then resolves what the fragment's options pull in.
    sh{k.source .. "/scripts/kconfig/merge_config.sh", "-m", "-O", k.out, config, k.fragment,
       cwd = k.source}
    k.make("olddefconfig")
    k.check_config()  -- merge_config.sh only warns about an option that did not stick
    local set = 0
    for _ in fs.read("out/.config"):gmatch("\nCONFIG_[%w_]+=") do set = set + 1 end
    log.info("config ready: %d options set", set)
    k.make("bzImage", "vmlinux")
    return {bzimage = k.out .. "/arch/x86/boot/bzImage", vmlinux = k.out .. "/vmlinux",
            config = config}
  end,
}
