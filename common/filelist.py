"""Filelists: one `relative/path|text` (or more fields) per line, validated with file:line errors."""
import os
from typing import List, NamedTuple


class FilelistEntry(NamedTuple):
    path: str  # joined with the dataset path
    fields: List[str]  # the remaining '|' fields (text, ...)
    line: int  # 1-based line number, for messages
    source: str  # the filelist

    @property
    def where(self) -> str:
        """'filelist:line', the prefix of every error about this entry."""
        return f"{self.source}:{self.line}"


class FilelistError(ValueError):
    """A malformed filelist line, with file and line named."""


def read_text_lines(path: str, error: type = ValueError) -> List[str]:
    """The lines of a UTF-8 text file saved anywhere: a byte-order mark dropped, CRLF/CR/LF line ends;
    a file that is not UTF-8 raises `error` naming the file, the line and the first bad byte."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not UTF-8 text (byte {raw[e.start]:#04x}); re-save the file as UTF-8") from e
    return text.splitlines()


def inside(path: str, folder: str) -> bool:
    """Whether the resolved `path` lies under the resolved `folder`."""
    return path != folder and os.path.commonpath([path, folder]) == folder


def load_filelist(filelist: str, dataset_path: str = "", min_fields: int = 2) -> List[FilelistEntry]:
    """Parse a filelist; every non-blank line needs at least `min_fields` '|'-separated fields.

    Paths, relative to `dataset_path` or absolute (as NVIDIA's filelists may hold them), must resolve inside
    `dataset_path` when one is given: a '..' or a link out of it is refused, naming where it led.
    """
    if not os.path.isfile(filelist):
        raise FilelistError(f"{filelist}: filelist not found")
    entries = []
    root = os.path.realpath(dataset_path) if dataset_path else None
    lines = read_text_lines(filelist, FilelistError)
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) < min_fields:
            raise FilelistError(f"{filelist}:{n}: expected 'path|text' ({min_fields} '|'-separated fields), "
                                f"got {len(parts)}: {line[:80]!r}")
        rel = parts[0].strip()
        if not rel:
            raise FilelistError(f"{filelist}:{n}: empty path")
        parts = [parts[0]] + [p.strip() for p in parts[1:]]
        if any(not p for p in parts[1:min_fields]):
            raise FilelistError(f"{filelist}:{n}: empty transcript")
        path = os.path.join(dataset_path, rel) if dataset_path else rel  # an absolute `rel` stays itself
        if root is not None and not inside(os.path.realpath(path), root):
            raise FilelistError(f"{filelist}:{n}: path {rel!r} resolves to {os.path.realpath(path)!r}, outside "
                                f"the dataset path {dataset_path!r} ({root}): pass -d with a folder that holds it")
        entries.append(FilelistEntry(path, parts[1:], n, filelist))
    if not entries:
        raise FilelistError(f"{filelist}: no entries")
    return entries
