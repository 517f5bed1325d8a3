"""$ref resolution inside one schema document: JSON pointers, $id-relative URIs and $anchor.

`RefIndex(root)` walks the document once and records every subschema that declares `$id`
(draft 2020-12 and draft-07 spellings) or `$anchor` (and draft-07 `"$id": "#name"`) under its
absolute URI. `resolve(ref, base)` joins `ref` against the current base URI and returns
`(subschema, json_pointer, new_base)`. Anything not inside the document (a remote `$ref`) is a
`LookupError`: we never fetch.
"""
from __future__ import annotations

from urllib.parse import unquote, urljoin, urldefrag

DEFAULT_BASE = "https://gramserve.invalid/schema.json"
# keywords whose values are data, not subschemas: never look for $id inside them
_DATA_KEYWORDS = frozenset({"enum", "const", "examples", "default"})


def escape_pointer(token) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def unescape_pointer(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def pointer_child(node, token: str):
    """The member or item of `node` that one (unescaped) JSON pointer token names; KeyError if none."""
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    if isinstance(node, dict) and token in node:
        return node[token]
    raise KeyError(token)


class RefIndex:
    def __init__(self, root):
        self.root = root
        self.docs: dict[str, tuple[object, str, str]] = {}  # absolute URI -> (schema, ptr, base)
        self.base = DEFAULT_BASE
        if isinstance(root, dict) and isinstance(root.get("$id"), str) and not root["$id"].startswith("#"):
            self.base = urldefrag(urljoin(DEFAULT_BASE, root["$id"]))[0]
        self.docs[self.base] = (root, "", self.base)
        self._resolved: dict[tuple, tuple] = {}
        self._base_urls: dict[str, str] = {}
        self._walk(root, "", self.base)

    def _walk(self, node, ptr: str, base: str) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                self._walk(item, f"{ptr}/{i}", base)
            return
        if not isinstance(node, dict):
            return
        sid = node.get("$id")
        if isinstance(sid, str):
            if sid.startswith("#"):  # draft-07 plain-name fragment
                self.docs[f"{base}{sid}"] = (node, ptr, base)
            else:
                base = urldefrag(urljoin(base, sid))[0]
                self.docs.setdefault(base, (node, ptr, base))
        if isinstance(node.get("$anchor"), str):
            self.docs[f"{base}#{node['$anchor']}"] = (node, ptr, base)
        for key, value in node.items():
            if key not in _DATA_KEYWORDS and isinstance(value, (dict, list)):
                self._walk(value, f"{ptr}/{escape_pointer(key)}", base)

    def _base_url(self, base: str) -> str:
        """urldefrag(urljoin(base, "#" + fragment)).url, the same for every fragment."""
        got = self._base_urls.get(base)
        if got is None:
            got = self._base_urls[base] = urldefrag(urljoin(base, "#"))[0]
        return got

    def resolve(self, ref: str, base: str) -> tuple[object, str, str]:
        """The subschema `ref` names, its JSON pointer in the document, and its base URI."""
        got = self._resolved.get((ref, base))  # (schemas repeat their $refs: urljoin is slow)
        if got is None:
            got = self._resolved[(ref, base)] = self._resolve(ref, base)
        return got

    def _resolve(self, ref: str, base: str) -> tuple[object, str, str]:
        if ref.startswith("#") and not any(c in ref for c in "\t\r\n"):
            # a fragment (the usual "#/$defs/x"): joined it keeps the base's URL, whatever the
            # fragment (unless urlsplit would strip tabs or newlines out of it), so the URL part
            # is joined once per base
            url, frag = self._base_url(base), ref[1:]
        else:
            url, frag = urldefrag(urljoin(base, ref))
        if frag and not frag.startswith("/"):
            hit = self.docs.get(f"{url}#{frag}")
            if hit is None:
                raise LookupError(f"$ref {ref!r}: no $anchor {frag!r} in this schema")
            return hit
        if url not in self.docs:
            raise LookupError(f"$ref {ref!r} points outside this schema (remote refs are not fetched)")
        node, ptr, doc_base = self.docs[url]
        for raw in frag.split("/")[1:] if frag else []:
            token = unescape_pointer(unquote(raw))
            try:
                node = pointer_child(node, token)
            except KeyError:
                raise LookupError(f"$ref {ref!r}: {token!r} not found") from None
            ptr = f"{ptr}/{escape_pointer(token)}"
            if isinstance(node, dict) and isinstance(node.get("$id"), str) and not node["$id"].startswith("#"):
                doc_base = urldefrag(urljoin(doc_base, node["$id"]))[0]
        return node, ptr, doc_base
