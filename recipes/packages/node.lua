-- Node.js from Debian's archive (not a third-party repository the host may also have).
package "node" {
  description = "Node.js, with the modules Debian builds it against",
  debs = {"nodejs"},
  program = "/usr/bin/node",
  suffixes = {".js", ".mjs", ".cjs"},
  memory = "512M",
}
