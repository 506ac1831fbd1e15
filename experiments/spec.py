"""Experiment spec files for ``POST experiments/import``: JSON or YAML, at most 1 MiB.

YAML is read with a safe loader that also refuses anchors and aliases: a few lines of
nested aliases expand into billions of nodes once walked ("billion laughs"), and a spec
has no need for them.
"""

import json

import yaml


class SpecError(ValueError):
    pass


class _NoAliasSafeLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases are not allowed in a spec", event.start_mark
            )
        return super().compose_node(parent, index)


def parse_spec(raw: bytes, filename: str = "") -> dict:
    """The spec as a dict, or ``SpecError`` saying what is wrong with the file."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError("The file is not UTF-8 text.") from exc
    if not text.strip():
        raise SpecError("The file is empty.")
    name = filename.lower()
    looks_json = name.endswith(".json") or text.lstrip().startswith(("{", "["))
    if looks_json:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"Invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from exc
    else:
        try:
            data = yaml.load(text, Loader=_NoAliasSafeLoader)  # noqa: S506 (a SafeLoader subclass)
        except yaml.YAMLError as exc:
            raise SpecError(f"Invalid YAML: {exc}") from exc
        # YAML has dates and other types JSON lacks; a spec holds them as strings.
        data = json.loads(json.dumps(data, default=str))
    if not isinstance(data, dict):
        raise SpecError("The spec must be an object with at least a name.")
    return data
