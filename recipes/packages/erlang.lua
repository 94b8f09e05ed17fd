-- Erlang/OTP from Debian. `erl` is a shell script and the guest has no shell: dyn_erl is the
-- same launcher in C (it finds the OTP root from its own path and starts the emulator).
package "erlang" {
  description = "Erlang/OTP: the BEAM emulator, kernel, stdlib, compiler, sasl",
  debs = {"erlang-base"},
  program = "/usr/lib/erlang/erts-*/bin/dyn_erl",
  args = {"-noshell"},
  drop = {"/usr/lib/erlang/man/**"},
  suffixes = {".erl", ".beam"},
}
