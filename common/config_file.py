"""`--config-file`: a JSON object of flag defaults, each value checked against its flag before anything starts.

Two layouts: ours, `{"batch_size": 8, ...}` (flag dests), and NVIDIA's grouped one, `{"audio": {"sampling-rate":
22050, "mel-fmax": 7000.0, ...}}` (groups of flags spelt as on the command line), as its config.json is.

argparse converts the strings of a command line; values from a file arrive already typed and would reach the
model unchecked (`{"postnet_n_convolutions": [5]}` ended in a TypeError deep inside tacotron2/model.py). Here
every value must be what its flag would have produced: an int for an int flag, a list for a multi-value flag,
true/false for a switch, one of the choices where the flag has them. Errors name the file, its line and the key.
"""
import argparse
import json
from typing import Dict

from common.filelist import read_text_lines


def str2bool(v: str) -> bool:
    """A flag's boolean value as the seed's commands write it (True/False, 1/0, yes/no)."""
    if isinstance(v, bool):
        return v
    if v.lower() in ("1", "true", "yes", "y"):
        return True
    if v.lower() in ("0", "false", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {v!r}")


class ConfigFileError(ValueError):
    pass


def _line_of(lines, key: str) -> str:
    for i, line in enumerate(lines, 1):
        if f'"{key}"' in line:
            return f":{i}"
    return ""


def _one_value(action: argparse.Action, value: object) -> object:
    """A scalar as the flag's type makes it; TypeError/ValueError with the reason."""
    if isinstance(value, (list, dict)):
        raise TypeError(f"expected one value, got {json.dumps(value)}")
    kind = action.type
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(f"expected a number, got {json.dumps(value)}")
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise TypeError(f"expected an integer, got {value}")
        value = kind(value)  # ValueError for a string that is no such number
    elif kind in (None, str):
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {json.dumps(value)}")
    else:  # a converter of the flag's own, e.g. str2bool
        try:
            value = kind(value)
        except (argparse.ArgumentTypeError, AttributeError, TypeError, ValueError) as e:
            raise TypeError(str(e) or f"not a valid value: {json.dumps(value)}") from None
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"{json.dumps(value)} is not one of {sorted(action.choices)}")
    return value


def _checked(action: argparse.Action, value: object) -> object:
    if value is None:
        if action.default is None:
            return None
        raise TypeError(f"null, where the flag's default is {action.default!r}")
    if action.nargs == 0:  # a switch: store_true / store_false / store_const
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {json.dumps(value)}")
        return value
    if action.nargs in ("*", "+") or isinstance(action.nargs, int):
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {json.dumps(value)}")
        if action.nargs == "+" and not value:
            raise ValueError("expected at least one value")
        return [_one_value(action, v) for v in value]
    return _one_value(action, value)


def read_config_defaults(path: str, parser: argparse.ArgumentParser) -> Dict[str, object]:
    """The file's values, by flag dest, checked and converted; ConfigFileError naming the file, line and key."""
    lines = read_text_lines(path)  # ValueError naming the file, the line and the byte where not UTF-8
    try:
        values = json.loads("\n".join(lines))
    except json.JSONDecodeError as e:
        raise ConfigFileError(f"--config-file {path}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(values, dict):
        raise ConfigFileError(f"--config-file {path}: expected a JSON object of flag defaults")
    actions = {a.dest: a for a in parser._actions if a.dest != argparse.SUPPRESS}
    entries = _entries(values)  # (name as written, the JSON key, dest, value)
    unknown = sorted(name for name, _, dest, _ in entries if dest not in actions)
    if unknown:
        raise ConfigFileError(f"--config-file {path}: unknown keys {unknown} (use flag dests, e.g. 'batch_size', or "
                              f"NVIDIA's grouped layout, e.g. {{\"audio\": {{\"sampling-rate\": 22050}}}})")
    checked = {}
    for name, key, dest, value in entries:
        try:
            checked[dest] = _checked(actions[dest], value)
        except (TypeError, ValueError) as e:
            flag = actions[dest].option_strings[-1] if actions[dest].option_strings else dest
            raise ConfigFileError(f"--config-file {path}{_line_of(lines, key)}: {name!r} ({flag}): {e}") from None
    return checked


def _entries(values: Dict[str, object]):
    """Flat `{dest: value}`, or NVIDIA's `{group: {flag-name: value}}` when every value is an object."""
    if values and all(isinstance(v, dict) for v in values.values()):
        return [(f"{group}.{key}", key, key.replace("-", "_"), value)
                for group, members in values.items() for key, value in members.items()]
    return [(key, key, key.replace("-", "_"), value) for key, value in values.items()]
