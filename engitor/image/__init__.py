"""From a declared image to bytes: resolve (closures, kernel, init) then assemble (cpio)."""
