"""What `help(x)` and `?x` say about engitor's Lua API: a signature line and a sentence or two
for every function the shell's scope holds (a test checks that none is missing), and an
introduction for each module. The C bridge documents C names itself (signatures with
header:line, from `engitor.lua.api.c.describe`).
"""

from __future__ import annotations

OVERVIEW = """\
engitor shell: Lua (LuaJIT) with engitor's toolkit.

  fs        files under the current folder          sh        host programs as functions
  c         C libraries from their headers           log       messages on stderr
  engitor   builds, images and VMs as objects: engitor.run("recipes/web.lua") -> vm

Type an expression to see its value (=expr works too); tables are laid out with their
nesting. Tab completes names, fields, methods, C names and paths in strings. help(x) or ?x
describes x. Ctrl-C cancels the line or stops running Lua; Ctrl-D or exit() leaves. A
top-level `local` lives on to the next line. Scripts: engitor shell FILE.lua [ARGS]
(arg[1]… and ...), or pipe Lua into engitor shell."""

MODULES: dict[str, str] = {
    "fs": "fs: file operations inside one folder tree (in the shell: the current folder, "
          "writable). Paths resolve inside the tree like a chroot.",
    "sh": "sh: host programs called like functions. sh.git('status') returns stdout; "
          "sh{'ls', '-l', cwd = '/tmp'}; sh.pipe{{'ls'}, {'wc', '-l'}}. Options: cwd, env, "
          "stdin, timeout, stderr ('capture', 'inherit', 'stdout'), check (false: return "
          "stdout, code, stderr instead of raising).",
    "log": "log: messages on stderr. log.info('copied %d files', n) formats when the first "
           "argument holds a '%'.",
    "c": "c: C libraries through their headers. local z = c.include('zlib.h', {lib = 'z'}) "
         "gives a namespace of the header's functions, constants and types; z.<Tab> lists "
         "them and help(z.crc32) shows a signature. LuaJIT's ffi helpers (c.new, c.string, "
         "c.sizeof, …) are here too.",
    "engitor": "engitor: builds, images and running VMs. engitor.run(target, opts) boots a VM "
               "in the background and returns it as an object (help(vm) for its methods).",
    "vm": "A VM started by engitor.run or found by engitor.attach. Fields: name, image, "
          "image_id, accel, pid, detached, ports ({host, guest, proto, bind} each). Control "
          "goes over QMP.",
}

DOCS: dict[str, str] = {
    # -- the shell's own -----------------------------------------------------------------------
    "help": "help([x])\nDescribe x: an engitor function's doc, a C function's signature, a "
            "module's contents, where a Lua function was defined. ?x does the same.",
    "exit": "exit([code])\nLeave the shell (or end the script) with an exit status (default 0).",
    # -- fs ------------------------------------------------------------------------------------------
    "fs.read": "fs.read(path) -> string\nThe bytes of a file.",
    "fs.write": "fs.write(path, data [, mode])\nWrite a file (folders are created); mode like '755'.",
    "fs.append": "fs.append(path, data)\nAdd data at the end of a file.",
    "fs.mkdir": "fs.mkdir(path)\nMake a folder and its parents.",
    "fs.list": "fs.list([path]) -> {names}\nThe entries of a folder, sorted.",
    "fs.glob": "fs.glob(pattern) -> {paths}\nPaths matching a shell pattern ('**' spans folders).",
    "fs.exists": "fs.exists(path) -> boolean",
    "fs.isdir": "fs.isdir(path) -> boolean",
    "fs.isfile": "fs.isfile(path) -> boolean",
    "fs.stat": "fs.stat(path) -> {type, size, mode, mtime} | nil",
    "fs.remove": "fs.remove(path [, {recursive = true}])\nRemove a file, or a folder.",
    "fs.copy": "fs.copy(src, dst)\nCopy a file or folder within the tree.",
    "fs.copy_in": "fs.copy_in(src, dst)\nCopy from the recipe's folder (fs.src) into the tree.",
    "fs.chmod": "fs.chmod(path, mode)\nmode like '755' or 493.",
    "fs.symlink": "fs.symlink(target, path)",
    "fs.path": "fs.path([path]) -> string\nThe host path of a file in the tree (for host commands).",
    "fs.at": "fs.at(folder [, {write = true}]) -> fs\nAnother tree, read-only unless asked.",
    "fs.join": "fs.join(...) -> string\nJoin path parts with '/'.",
    "fs.basename": "fs.basename(path) -> string",
    "fs.dirname": "fs.dirname(path) -> string",
    "fs.match": "fs.match(name, pattern) -> boolean\nShell-pattern match (fnmatch).",
    # -- sh --------------------------------------------------------------------------------------------
    "sh.shell": "sh.shell(script [, opts]) -> stdout\nA /bin/sh command line: the only way sh "
                "involves a shell.",
    "sh.pipe": "sh.pipe{{cmd, args...}, {cmd, ...}, option = value} -> stdout\nReal pipes "
               "between processes; the result is the last one's output.",
    # -- log ---------------------------------------------------------------------------------------------
    "log.debug": "log.debug(...)\nPrinted only when ENGITOR_DEBUG is set.",
    "log.info": "log.info(...)",
    "log.warn": "log.warn(...)",
    "log.error": "log.error(...)\nA message; it does not stop anything (use error() for that).",
    # -- c ---------------------------------------------------------------------------------------------
    "c.include": "c.include(headers [, {lib, libdir, incdir, define, cflags}]) -> namespace\n"
                 "Read C headers (cached) and return their API as a Lua namespace; lib names "
                 "the shared library to call into ('z', or a path).",
    "c.cdef": "c.cdef(text)\nDeclare C by hand (LuaJIT's ffi.cdef).",
    "c.load": "c.load(name [, libdir]) -> library\nA shared library found as lib= finds it.",
    "c.info": "c.info(namespace) -> {functions, variables, types, constants, macros, ...}\n"
              "Everything a namespace offers, by kind.",
    "c.new": "c.new(ctype [, init...]) -> cdata\nA new C object (ffi.new).",
    "c.cast": "c.cast(ctype, value) -> cdata (ffi.cast)",
    "c.typeof": "c.typeof(ctype) -> ctype (ffi.typeof)",
    "c.metatype": "c.metatype(ctype, metatable) -> ctype (ffi.metatype)",
    "c.gc": "c.gc(cdata, finalizer) -> cdata (ffi.gc)",
    "c.sizeof": "c.sizeof(ctype) -> number (ffi.sizeof)",
    "c.alignof": "c.alignof(ctype) -> number (ffi.alignof)",
    "c.offsetof": "c.offsetof(ctype, field) -> number (ffi.offsetof)",
    "c.istype": "c.istype(ctype, value) -> boolean (ffi.istype)",
    "c.errno": "c.errno([new]) -> number\nThe C errno (ffi.errno).",
    "c.string": "c.string(ptr [, len]) -> string\nA Lua string from C memory (ffi.string).",
    "c.copy": "c.copy(dst, src, len) (ffi.copy)",
    "c.fill": "c.fill(dst, len [, byte]) (ffi.fill)",
    # -- engitor -------------------------------------------------------------------------------------------
    "engitor.run": "engitor.run(target [, opts]) -> vm\nBuild (if needed) and boot a VM in the "
                   "background. target: recipe.lua[:IMAGE], config.yaml or a program path. "
                   "opts: image settings that replace the recipe's (ports, args, env, memory, "
                   "cpus, accel, kernel, files, dirs, boot_timeout, stop_timeout, …) and name "
                   "(instance name), image (which image), detach (outlive the shell, like "
                   "engitor run -d), verbose (build messages).",
    "engitor.attach": "engitor.attach(name) -> vm\nA VM that is already running (see "
                      "engitor.ps()), as an object.",
    "engitor.ps": "engitor.ps([all]) -> {{name, image, state, accel, ports, pid, owner, ...}}\n"
                  "Running VMs; all = true adds the ones that ended and were not removed.",
    "engitor.build": "engitor.build(target [, opts]) -> {name, id, short, size}\nBuild the "
                     "images of a recipe (a list when it declares several).",
    "engitor.images": "engitor.images() -> {img, ...}\nThe image store, newest first: image "
                      "objects {name, names, id, short, size, program}.",
    "engitor.image": "engitor.image(ref) -> img\nOne image by name, id or id prefix.",
    "img:diff": "img:diff(other) -> {summary, files, packages}\nFiles added (A), removed (D), "
                "changed (M) with sizes, and package versions, from img to other.",
    "img:history": "img:history() -> {{n, id, short, time, why, size, changes}}\nEvery build "
                   "of the image's name, newest first (n is the ~N of engitor rollback).",
    "img:inspect": "img:inspect() -> table\nWhat engitor inspect --json shows.",
    "engitor.recipe": "engitor.recipe(path) -> {source, images}\nWhat a recipe declares, as "
                      "plain data.",
    "engitor.free_port": "engitor.free_port() -> number\nA TCP port free on 127.0.0.1 now, "
                         "for ports = {port .. ':8080'}.",
    # -- VM methods ------------------------------------------------------------------------------------------
    "vm:wait_port": "vm:wait_port(port [, timeout]) -> host port\nWait (default 60 s) until "
                    "the guest accepts connections on a forwarded TCP port (guest or host "
                    "number); an error if it does not or the VM ends.",
    "vm:port": "vm:port(port) -> host port\nThe host port forwarding a guest port.",
    "vm:console": "vm:console([{raw = true}]) -> {lines}\nThe program's console output so far "
                  "(raw: with the kernel's and engitor's own lines).",
    "vm:state": "vm:state() -> string\nstarting, ready (listening on its forwarded ports), paused, stopping or exited.",
    "vm:pause": "vm:pause()\nFreeze the vCPUs (QMP stop).",
    "vm:resume": "vm:resume()\nThaw them (QMP cont).",
    "vm:stop": "vm:stop([timeout]) -> code\nSIGTERM the program (ACPI power button), power off "
               "after its stop_timeout, and remove the instance. Returns the exit status, or "
               "nil and why.",
    "vm:kill": "vm:kill()\nEnd the VM at once.",
    "vm:wait": "vm:wait([timeout]) -> code\nWait for the program to end; its exit status "
               "(128+N when killed by signal N), or nil and why (\"timeout\" after timeout s).",
    "vm:qmp": "vm:qmp(command [, args]) -> result\nAny QMP command, e.g. "
              "vm:qmp('query-status') or vm:qmp('human-monitor-command', "
              "{['command-line'] = 'info network'}).",
    "vm:vcpus": "vm:vcpus() -> {{index, thread}}\nThe vCPUs as host threads (QMP "
                "query-cpus-fast).",
}


def summary(key: str) -> str:
    """The one line shown in a module's listing: the signature."""
    return DOCS[key].split("\n", 1)[0]
