"""engitor shell: a Lua REPL (prompt_toolkit) over the runtime and API of recipe hooks.

session.py is the core (what a chunk means, printing, help, scripts, pipes), repl.py the
terminal loop, complete.py Tab completion, lexer.py the bits of Lua's grammar they need,
docs.py what help() says; lua/shell.lua is the Lua half (pretty printer, lookups).
"""
