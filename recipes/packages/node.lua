-- Node.js from Debian's archive (not a third-party repository the host may also have).
package "node" {
  description = "Node.js, with the modules Debian builds it against",
  -- ca-certificates: the trust store, so HTTPS clients in the guest verify servers.
  debs = {"nodejs", "ca-certificates"},
  program = "/usr/bin/node",
  suffixes = {".js", ".mjs", ".cjs"},
  memory = "512M",
}
