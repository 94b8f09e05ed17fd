-- Python 3 (CPython) from Debian: `engitor load python3 -a app.py`.
package "python3" {
  description = "Python 3 (CPython), the whole standard library",
  debs = {"python3"},
  program = "/usr/bin/python3",
  -- The console is a serial line: print() should reach it at once.
  env = { PYTHONUNBUFFERED = "1" },
  suffixes = {".py", ".pyz"},
}
