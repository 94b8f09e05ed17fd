"""One filter for the program's console output, used by `engitor run`/`logs` (streaming) and
the Lua vm API's vm:console() (a whole console)."""

from __future__ import annotations

from engitor.vm.instance import ProgramOutput, Status, program_lines

CONSOLE = [
    "PCI: Fatal: No config space access function found",   # kernel noise
    "",
    "@@engitor:start pid=42 uptime=0.8",
    "hello",
    "",                                                     # the program's own blank line
    "world",
    "partial",
    "",                                                     # the init's fresh-line blank
    "@@engitor:exit code=0",
]
PROGRAM = ["hello", "", "world", "partial"]


def test_a_whole_console():
    assert program_lines(CONSOLE) == PROGRAM


def test_streamed_in_any_pieces_gives_the_same_lines():
    for cut in range(len(CONSOLE) + 1):
        status, out = Status(), ProgramOutput()
        tagged = [(line, status.feed(line)) for line in CONSOLE]
        got = out.feed(tagged[:cut]) + out.feed(tagged[cut:], final=True)
        assert got == PROGRAM, cut


def test_a_trailing_blank_line_of_the_program_is_kept_at_the_end():
    assert program_lines(["a", ""]) == ["a", ""]


def test_an_initramfs_the_guest_could_not_unpack_is_said():
    status = Status()
    for line in ("[    1.476743] Initramfs unpacking failed: write error",
                 "@@engitor:start pid=80 uptime=2.127",
                 "/usr/bin/php8.2: error while loading shared libraries: libxml2.so.2",
                 "@@engitor:exit code=127"):
        status.feed(line)
    assert status.code == 127
    assert status.errors == ["the guest's memory was too small to unpack its initramfs "
                             "(raise --memory)"]
