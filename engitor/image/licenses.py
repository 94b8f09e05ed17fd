"""Debian machine-readable copyright files (DEP-5) -> an SPDX licence expression.

Every `License:` short name of the file's Files paragraphs joins the expression with AND (the
package holds all those files). Debian's short names become SPDX ids where the two agree on
the meaning (GPL-2+ is GPL-2.0-or-later); any other name becomes a LicenseRef- whose text is
the file's stand-alone License paragraph, for the SBOM's extracted licensing infos. A file that
is not DEP-5 gives None: the SBOM says NOASSERTION rather than guess from prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DEP5_FORMAT = re.compile(r"^Format:\s*\S*copyright-format", re.IGNORECASE | re.MULTILINE)

# Debian short name (lower case) -> SPDX id. "+" means "or any later version".
SPDX_IDS = {
    "apache-2.0": "Apache-2.0", "artistic": "Artistic-1.0-Perl", "artistic-2.0": "Artistic-2.0",
    "bsd-2-clause": "BSD-2-Clause", "bsd-3-clause": "BSD-3-Clause", "bsd-4-clause": "BSD-4-Clause",
    "cc0-1.0": "CC0-1.0", "expat": "MIT", "mit": "MIT", "isc": "ISC", "zlib": "Zlib",
    "mpl-1.1": "MPL-1.1", "mpl-2.0": "MPL-2.0", "psf-2": "Python-2.0", "python-2.0": "Python-2.0",
    "openssl": "OpenSSL", "curl": "curl", "bsl-1.0": "BSL-1.0", "unicode-dfs-2016":
    "Unicode-DFS-2016", "x11": "X11", "ssleay": "OpenSSL", "0bsd": "0BSD", "ftl": "FTL",
    "wtfpl": "WTFPL", "libpng": "Libpng", "ijg": "IJG", "openldap-2.8": "OLDAP-2.8",
}
VERSIONED = {"gpl": "GPL", "lgpl": "LGPL", "agpl": "AGPL", "gfdl": "GFDL"}


@dataclass
class Licence:
    expression: str
    texts: dict[str, str] = field(default_factory=dict)  # LicenseRef-… -> its text


def paragraphs(text: str) -> list[dict[str, str]]:
    """RFC 822-style paragraphs; continuation lines joined with newlines (" ." is a blank)."""
    out: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                out.append(current)
            current, key = {}, ""
        elif line[0].isspace() and key:
            body = line.strip()
            current[key] += "\n" + ("" if body == "." else body)
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            current[key] = value.strip()
    if current:
        out.append(current)
    return out


def spdx_id(name: str) -> str | None:
    """A Debian short licence name as an SPDX id, or None when there is no sure match."""
    low = name.strip().lower()
    if low in SPDX_IDS:
        return SPDX_IDS[low]
    m = re.fullmatch(r"(l?gpl|agpl|gfdl)-?(\d(?:\.\d)?)(\+?)", low)
    if m:
        base, version, later = m.groups()
        if "." not in version:
            version += ".0"
        return f"{VERSIONED[base]}-{version}-{'or-later' if later else 'only'}"
    return None


def _ref(name: str) -> str:
    return "LicenseRef-" + (re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-") or "unknown")


def _term(name: str, standalone: dict[str, str], texts: dict[str, str]) -> str:
    known = spdx_id(name)
    if known:
        return known
    ref = _ref(name)
    texts.setdefault(ref, standalone.get(name.lower()) or f"Debian licence short name: {name}")
    return ref


def _expression(short: str, standalone: dict[str, str], texts: dict[str, str]) -> str:
    """`GPL-2+ or Artistic` -> `(GPL-2.0-or-later OR Artistic-1.0-Perl)`; anything else that
    is not plain words joined by or/and (exceptions, commas) is one LicenseRef."""
    words = short.split()
    names = words[0::2]
    ops = words[1::2]
    if words and len(words) % 2 == 1 and all(op.lower() in ("or", "and") for op in ops) \
            and not any(w.lower() in ("or", "and", "with") for w in names):
        parts = [_term(n, standalone, texts) for n in names]
        out = parts[0]
        for op, part in zip(ops, parts[1:], strict=True):
            out += f" {op.upper()} {part}"
        return f"({out})" if len(parts) > 1 else out
    return _term(short, standalone, texts)


def from_copyright(text: str) -> Licence | None:
    if not DEP5_FORMAT.search(text):
        return None
    paras = paragraphs(text)
    standalone = {}
    for p in paras:
        if "license" in p and "files" not in p and "format" not in p:
            name, _, body = p["license"].partition("\n")
            standalone[name.strip().lower()] = body.strip() or name.strip()
    texts: dict[str, str] = {}
    terms: list[str] = []
    for p in paras:
        if "files" in p and "license" in p:
            short = p["license"].partition("\n")[0].strip()
            if short:
                term = _expression(short, standalone, texts)
                if term not in terms:
                    terms.append(term)
    if not terms:
        return None
    return Licence(" AND ".join(terms), texts)
