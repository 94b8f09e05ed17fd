-- Ruby from Debian, with the gems Debian ships beside it (WEBrick among them).
package "ruby" {
  description = "Ruby (MRI) with its default gems",
  debs = {"ruby"},
  program = "/usr/bin/ruby",
  suffixes = {".rb"},
}
