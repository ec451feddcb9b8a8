"""Token ids -> text with the checkpoint's own ``tokenizer.json`` (the ``tokenizers`` library)."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer

TOKENIZER_FILE = "tokenizer.json"


class TextDecoder:
    """Decodes CTC-collapsed ids; special tokens (pad, end-of-text, reserved) are skipped."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer

    @classmethod
    def from_folder(cls, folder: str | Path) -> "TextDecoder":
        path = Path(folder) / TOKENIZER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{folder} has no {TOKENIZER_FILE}: the checkpoint's tokenizer is needed to decode text")
        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as e:  # noqa: BLE001 - tokenizers raises a generic Exception on bad files
            raise ValueError(f"cannot read {path}: {e}") from e

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=True)

    def decode_batch(self, batch: list[list[int]]) -> list[str]:
        """``decode`` of each; one at a time on the calling thread: the tokenizers library's batch
        decode fans out to a thread pool of its own, which on an inference actor costs more than it
        gains (short texts) and takes cores the node's decoders were counted on."""
        decode = self._tokenizer.decode
        return [decode(ids, skip_special_tokens=True) for ids in batch]

    def token_bytes(self, ids: list[int]) -> list[bytes]:
        """The bytes each id contributes to ``decode(ids)``, in order: concatenated and decoded as
        UTF-8 (errors replaced), they give the decoded text. Special and unknown ids give ``b""``.

        Exact for byte-level BPE (the Granite tokenizer: each character of a piece stands for one
        byte, GPT-2's reversible byte-to-character table); for other decoders each id's own
        ``decode([id])``, with a leading space where its piece starts with ``▁`` or ``Ġ``.
        """
        table = self.__dict__.setdefault("_piece_bytes", {})
        missing = [i for i in ids if i not in table]
        if missing:
            from tokenizers import decoders

            specials = {i for i, tok in self._tokenizer.get_added_tokens_decoder().items() if tok.special}
            byte_level = isinstance(self._tokenizer.decoder, decoders.ByteLevel)
            for i in set(missing):
                piece = self._tokenizer.id_to_token(i)
                if piece is None or i in specials:
                    table[i] = b""
                elif byte_level and all(ch in _UNICODE_TO_BYTE for ch in piece):
                    table[i] = bytes(_UNICODE_TO_BYTE[ch] for ch in piece)
                elif byte_level:
                    table[i] = piece.encode()  # an added (non-special) token: its own text
                else:
                    lead = " " if piece[:1] in ("\u2581", "\u0120") else ""
                    table[i] = (lead + self._tokenizer.decode([i], skip_special_tokens=True)).encode()
        return [table[i] for i in ids]


def _byte_level_table() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet: printable Latin-1 bytes stand for themselves, the other
    bytes for the characters from U+0100 on, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {chr(b): b for b in printable}
    extra = 0
    for b in range(256):
        if b not in printable:
            table[chr(256 + extra)] = b
            extra += 1
    return table


_UNICODE_TO_BYTE = _byte_level_table()
