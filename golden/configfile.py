"""BN configuration files: one TOML file describes one :class:`~lightnorm.golden.bnconfig.BNConfig`.

Every key of the file is a field of BNConfig, named as there, plus two optional keys of the
file itself::

    # examples/fp8_g4k4.toml
    base = "lightnorm"          # optional: start from this BN preset (default: BNConfig())
    name = "fp8_g4k4"           # optional: default the file name without .toml
    fwd_fmt = "E4M3"            # FloatFormat: "E<exp>M<man>", "_ftz" flushes subnormals,
    bwd_fmt = "E5M2"            #   a FLOAT_PRESETS name ("fp32", "bf16", ...), or a table
    fwd_acc_fmt = {exp_bits = 6, man_bits = 11}
    x_bfp = {group = 4, man_bits = 4}   # BfpFormat table (group may be left out: = lanes)
    dx_bfp = "none"                      # plain FP words on that stream
    lanes = 4
    eps = 1e-5

The loader is generic over the dataclass: the fields and their types come from
``dataclasses.fields(BNConfig)`` and the annotations (``str``, ``int``, ``float``, ``bool``, a
dataclass written as a table of its fields, ``X | None`` with ``"none"``, ``tuple[...]`` as an
array), so a field added to BNConfig is read from files without a change here.  The rules
specific to formats are few and documented here and in docs/configuration.md:

* rounding is one field of the config (BNConfig applies it to every format), so a format
  table or name may not carry its own rounding;
* a BFP table without ``group`` takes ``lanes`` (the only value BNConfig accepts), and a
  BFP format inherited from ``base`` follows an overridden ``lanes``;
* the config name must be a Verilog identifier (it names the top module ``bn_<name>`` and the
  build directories) and may be a BN preset's name only for that preset's exact config.

Every problem raises :class:`ConfigFileError`, whose message is one line naming the file, the
field, the value as written and what is allowed; the command-line flows print it and exit
with status 2 before they write anything.
"""

import dataclasses
import difflib
import hashlib
import math
import re
import types
import typing
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:      # Python 3.10: the same parser as a package
    import tomli as tomllib

from .bnconfig import BN_PRESETS, BNConfig
from .formats import FLOAT_PRESETS, BfpFormat, FloatFormat

__all__ = ["ConfigFileError", "ConfigFile", "FILE_KEYS", "load_config", "load_config_or_exit",
           "parse_config", "config_toml", "format_value"]

#: Keys of a configuration file that are not BNConfig fields.
FILE_KEYS = ("base", "name")

#: Fields of nested formats that the config sets once for all of them (BNConfig re-rounds
#: every format), so a file may not set them per format.
_CONFIG_WIDE = ("rounding",)

_NO_VALUE = object()
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_FLOAT_NAME = re.compile(r"e(\d+)m(\d+)\Z")


class ConfigFileError(ValueError):
    """An invalid configuration file; ``str()`` is the one-line message the flows print.

    Attributes
    ----------
    path : str
        The file (as given).
    field : str or None
        The key at fault (None: the file as a whole, e.g. not TOML).
    value : object
        The value as written in the file, or None.
    reason : str
        What is wrong and what is allowed.
    """

    def __init__(self, path, field, value=_NO_VALUE, reason=""):
        self.path, self.field, self.reason = str(path), field, reason
        self.value = None if value is _NO_VALUE else value
        where = f"{self.path}: "
        if field is not None:
            where += f"{field}: " if value is _NO_VALUE else f"{field} = {format_value(value)}: "
        super().__init__(where + " ".join(str(reason).split()))


@dataclasses.dataclass(frozen=True)
class ConfigFile:
    """A configuration file, read and validated.

    Attributes
    ----------
    path : str
    name : str
        Config name: the ``name`` key, else the file name without ``.toml``.
    base : str or None
        The BN preset the file starts from.
    config : BNConfig
    keys : tuple of str
        The BNConfig fields the file sets (the others come from ``base`` or the defaults).
    sha256 : str
        Digest of the file's bytes (manifests record which file made an output).
    """

    path: str
    name: str
    base: str | None
    config: BNConfig
    keys: tuple
    sha256: str

    def manifest(self):
        """JSON-able facts for the manifests of the flows."""
        return {"name": self.name, "file": str(Path(self.path).resolve()),
                "sha256": self.sha256, "base": self.base, "keys": list(self.keys),
                "config": self.config.as_dict(), "toml": config_toml(self.config)}


# -- writing values (messages, config_toml) -----------------------------------------------------
def _float_name(fmt):
    return f"E{fmt.exp_bits}M{fmt.man_bits}" + ("" if fmt.subnormals else "_ftz")


def format_value(value):
    """``value`` as TOML text: what the user wrote, in messages and in :func:`config_toml`."""
    if value is None:
        return '"none"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else
                                                        ("inf" if value > 0 else "-inf"))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, FloatFormat):
        return format_value(_float_name(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return format_value({f.name: getattr(value, f.name) for f in dataclasses.fields(value)
                             if f.init and f.name not in _CONFIG_WIDE})
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return repr(value)


def config_toml(cfg, *, name=None):
    """The TOML text of ``cfg``, every field written out; :func:`parse_config` reads it back
    to an equal BNConfig."""
    if not isinstance(cfg, BNConfig):
        raise TypeError(f"cfg must be a BNConfig, not {cfg!r}")
    lines = [] if name is None else [f"name = {format_value(name)}"]
    lines += [f"{f.name} = {format_value(getattr(cfg, f.name))}"
              for f in dataclasses.fields(cfg) if f.init]
    return "\n".join(lines) + "\n"


# -- reading values -----------------------------------------------------------------------------
class _Bad(Exception):
    """A value that does not fit its type: ``reason`` says what is allowed."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def _float_format(text):
    s = text.lower()
    subnormals = True
    if s.endswith("_ftz"):
        s, subnormals = s[:-4], False
    mo = _FLOAT_NAME.match(s)
    if mo:
        return FloatFormat(int(mo.group(1)), int(mo.group(2)), subnormals=subnormals)
    if s in FLOAT_PRESETS:
        return FLOAT_PRESETS[s].replace(subnormals=subnormals and FLOAT_PRESETS[s].subnormals)
    if "_rtz" in s or "_rne" in s:
        raise _Bad("rounding is set for the whole config by the rounding field, not per format")
    raise _Bad('must be "E<exp_bits>M<man_bits>" (e.g. "E5M4"; "_ftz" flushes subnormals), '
               f"one of {', '.join(map(format_value, FLOAT_PRESETS))}, or a table "
               "{exp_bits = 5, man_bits = 4, subnormals = true}")


def _dataclass_from(tp, value, ctx):
    """A dataclass ``tp`` from a TOML table of its init fields (each converted by its type)."""
    if tp is FloatFormat and isinstance(value, str):
        try:
            return _float_format(value)
        except (TypeError, ValueError) as exc:
            raise _Bad(str(exc)) from None
    what = {FloatFormat: "a format name or a table {exp_bits, man_bits, subnormals}",
            BfpFormat: "a table {group, man_bits, exp_bits}"}.get(
                tp, f"a table of {tp.__name__}'s fields")
    if not isinstance(value, dict):
        raise _Bad(f"must be {what}")
    hints = typing.get_type_hints(tp)
    known = [f.name for f in dataclasses.fields(tp) if f.init and f.name not in _CONFIG_WIDE]
    kwargs = {}
    for key, raw in value.items():
        if key in _CONFIG_WIDE:
            raise _Bad(f"{key} is set for the whole config by the {key} field, not per format")
        if key not in known:
            raise _Bad(f"{tp.__name__} has no field {key!r}; its fields are {', '.join(known)}")
        try:
            kwargs[key] = _convert(hints[key], raw, ctx)
        except _Bad as bad:
            raise _Bad(f"{key}: {bad.reason}") from None
    if tp is BfpFormat and "group" not in kwargs and isinstance(ctx.get("lanes"), int):
        kwargs["group"] = ctx["lanes"]      # the only group BNConfig accepts
    missing = [f.name for f in dataclasses.fields(tp) if f.init and f.name not in kwargs
               and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise _Bad(f"{tp.__name__} needs {', '.join(missing)} (its fields are "
                   f"{', '.join(known)})")
    try:
        return tp(**kwargs)
    except (TypeError, ValueError) as exc:
        raise _Bad(str(exc)) from None


def _convert(tp, value, ctx):
    """TOML ``value`` -> a value of annotation ``tp``; raises :class:`_Bad`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and isinstance(value, str) and value == "none":
            return None
        others = [a for a in args if a is not type(None)]
        errors = []
        for a in others:
            try:
                return _convert(a, value, ctx)
            except _Bad as bad:
                errors.append(bad.reason)
        # "must be X" from each type: the value fits none of them; anything else is a
        # specific complaint about a value of the right kind (keep it as it is).
        if len(errors) == 1 and not errors[0].startswith("must be "):
            raise _Bad(errors[0])
        kinds = [e[len("must be "):] if e.startswith("must be ") else e for e in errors]
        if type(None) in args:
            kinds.append('"none"')
        raise _Bad("must be " + " or ".join(kinds))
    if origin is tuple:
        if not isinstance(value, list):
            raise _Bad("must be an array [...]")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, ctx) for v in value)
        if len(value) != len(args):
            raise _Bad(f"must be an array of {len(args)} values")
        return tuple(_convert(a, v, ctx) for a, v in zip(args, value))
    if tp is bool:
        if not isinstance(value, bool):
            raise _Bad("must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad("must be an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Bad("must be a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _Bad("must be a string")
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_from(tp, value, ctx)
    raise _Bad(f"has type {tp}, which configuration files cannot express yet")


def _involves_dataclass(tp):
    return (isinstance(tp, type) and dataclasses.is_dataclass(tp)) or any(
        _involves_dataclass(a) for a in typing.get_args(tp))


def _field_of(message, names):
    """The BNConfig field a BNConfig error message is about (it starts with the name)."""
    head = re.match(r"[A-Za-z_][A-Za-z0-9_]*", message)
    if head and head.group(0) in names:
        return head.group(0)
    for name in names:
        if re.search(rf"\b{name}\b", message):
            return name
    return None


def parse_config(data, source="<config>", *, name=None):
    """A :class:`ConfigFile` from the parsed TOML table ``data`` (a dict).

    Parameters
    ----------
    data : dict
        The file's table: BNConfig fields plus ``base`` and ``name`` (:data:`FILE_KEYS`).
    source : str
        The file, for messages.
    name : str, optional
        The config name when ``data`` has no ``name`` key (:func:`load_config`: the file name).

    Raises
    ------
    ConfigFileError
    """
    hints = typing.get_type_hints(BNConfig)
    fields = [f.name for f in dataclasses.fields(BNConfig) if f.init]
    allowed = list(FILE_KEYS) + fields
    for key, value in data.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigFileError(source, key, value, f"unknown field; {hint}the fields are "
                                  f"{', '.join(allowed)}")

    base = data.get("base")
    if base is not None and (not isinstance(base, str) or base not in BN_PRESETS):
        raise ConfigFileError(source, "base", base,
                              f"must be one of {', '.join(map(format_value, BN_PRESETS))}")
    start = BN_PRESETS[base] if base is not None else BNConfig()
    cfg_name = data.get("name", name)
    where = "" if "name" in data else " (the file name)"
    if not isinstance(cfg_name, str) or not _NAME.match(cfg_name):
        raise ConfigFileError(source, "name", cfg_name, "the config name" + where + " must be "
                              "a letter followed by letters, digits or _ (it names the module "
                              "bn_<name> and the build directories); set name = \"...\"")

    values = {f: getattr(start, f) for f in fields}
    given = [f for f in fields if f in data]
    ctx = {"lanes": values.get("lanes")}
    # Plain fields first: a BFP table without group takes lanes (the file's, else the base's).
    for f in sorted(given, key=lambda f: _involves_dataclass(hints[f])):
        try:
            values[f] = _convert(hints[f], data[f], ctx)
        except _Bad as bad:
            raise ConfigFileError(source, f, data[f], bad.reason) from None
        if f == "lanes":
            ctx["lanes"] = values[f]
    if "lanes" in data and isinstance(values["lanes"], int):
        for f in fields:
            inherited = values[f]
            if (f not in data and isinstance(inherited, BfpFormat)
                    and inherited.group == start.lanes):
                try:
                    values[f] = inherited.replace(group=values["lanes"])
                except ValueError:
                    pass            # lanes out of range: BNConfig names lanes below
    try:
        cfg = BNConfig(**values)
    except (TypeError, ValueError) as exc:
        field = _field_of(str(exc), fields)
        if field is None:
            raise ConfigFileError(source, None, reason=str(exc)) from None
        # The value as written, or the one inherited from the base (or the defaults).
        value = data[field] if field in data else values[field]
        origin = "" if field in data else (f" (inherited from base {base!r})" if base else
                                           " (the BNConfig default)")
        raise ConfigFileError(source, field, value, str(exc) + origin) from None

    if cfg_name in BN_PRESETS and cfg != BN_PRESETS[cfg_name]:
        raise ConfigFileError(source, "name", cfg_name, "the name of a BN preset, but the "
                              "config differs from that preset; give the file (or name = "
                              "\"...\") another name")
    return ConfigFile(str(source), cfg_name, base, cfg, tuple(given), "")


def load_config(path):
    """Read and validate the configuration file ``path``; returns a :class:`ConfigFile`.

    Raises
    ------
    ConfigFileError
        One line naming the file, the field, the value and what is allowed: unreadable or
        missing file, malformed TOML, unknown field, wrong type, a value BNConfig rejects.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigFileError(path, None, reason="cannot read the configuration file: "
                              f"{exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigFileError(path, None, reason=f"not UTF-8 text ({exc.reason} at byte "
                              f"{exc.start}); TOML files are UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(path, None, reason=f"not valid TOML: {exc}") from None
    stem = p.name[:-5] if p.name.endswith(".toml") else p.name
    cf = parse_config(data, str(path), name=stem)
    return dataclasses.replace(cf, sha256=hashlib.sha256(raw).hexdigest())


def load_config_or_exit(path):
    """:func:`load_config` for the command-line flows: on a :class:`ConfigFileError` print its
    one line to stderr and exit with status 2 (before the flow writes anything)."""
    import sys
    try:
        return load_config(path)
    except ConfigFileError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
