"""The interactive shell: prompt_toolkit over a `Session`.

Enter runs the chunk when it is complete Lua and opens a new line when it is not (an open
block, string or expression), so a multi-line function is typed, edited and recalled as one.
History lives in the engitor home; Tab completes (complete.py); input is highlighted as Lua.
Ctrl-C cancels the line being typed, or stops Lua that is running; Ctrl-D on an empty line
leaves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.filters import Condition
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.lexers import PygmentsLexer

from engitor import __version__, home
from engitor.shell.complete import LuaCompleter
from engitor.shell.session import Session, ShellExit

PROMPT = "> "
CONTINUATION = ".. "
BANNER = f"engitor {__version__} shell (LuaJIT) — help() for help, Ctrl-D to leave"


def history_path() -> Path:
    return home.home() / "shell_history"


def make_prompt(shell: Session, *, input: Any = None, output: Any = None,
                history: History | None = None) -> PromptSession[str]:
    from pygments.lexers.scripting import LuaLexer

    keys = KeyBindings()

    @Condition
    def at_indent() -> bool:
        # Tab at the start of a line (typing a block) indents instead of completing.
        before = session.default_buffer.document.current_line_before_cursor
        return before.strip() == "" and "\n" in session.default_buffer.text

    @keys.add("tab", filter=at_indent)
    def _(event: Any) -> None:
        event.current_buffer.insert_text("  ")

    if history is None:
        try:
            home.home().mkdir(parents=True, exist_ok=True)
            history = FileHistory(str(history_path()))
        except OSError:
            history = InMemoryHistory()
    session: PromptSession[str] = PromptSession(
        PROMPT,
        multiline=Condition(lambda: shell.incomplete(session.default_buffer.text)),
        prompt_continuation=CONTINUATION,
        lexer=PygmentsLexer(LuaLexer) if shell.color else None,
        completer=LuaCompleter(shell),
        complete_while_typing=False,
        history=history,
        key_bindings=keys,
        input=input,
        output=output,
        enable_history_search=False,
    )
    return session


def interact(shell: Session, *, input: Any = None, output: Any = None,
             history: History | None = None, banner: bool = True) -> int:
    """Read, run and print until Ctrl-D or exit(); the exit status."""
    session = make_prompt(shell, input=input, output=output, history=history)
    if banner:
        shell.write(BANNER, highlight=False)
    while True:
        try:
            text = session.prompt()
        except KeyboardInterrupt:
            continue  # the line is dropped; a fresh prompt
        except EOFError:
            return 0
        try:
            shell.execute(text)
        except KeyboardInterrupt:
            shell.err.write("interrupted\n")
            shell.err.flush()
        except ShellExit as e:
            return e.code
