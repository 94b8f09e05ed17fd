-- Python 3 (CPython) from Debian: `engitor load python3 -a app.py`.
package "python3" {
  description = "Python 3 (CPython), the whole standard library",
  -- ca-certificates: the trust store, so HTTPS clients in the guest verify servers.
  debs = {"python3", "ca-certificates"},
  program = "/usr/bin/python3",
  -- The console is a serial line: print() should reach it at once.
  env = { PYTHONUNBUFFERED = "1" },
  suffixes = {".py", ".pyz"},
}
