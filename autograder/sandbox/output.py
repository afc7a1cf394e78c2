"""What the submission printed: the worker's stdout and stderr, cut into one segment per call
and truncated, however much it prints."""

from __future__ import annotations

OUTPUT_HEAD = 1200  # bytes kept of what one call printed: the first ...
OUTPUT_TAIL = 1200  # ... and the last (results.PRINTED_CHARS shows both)
MARKER_DIGITS = 20  # digits of a call's sequence number in its end marker (at most)


class OutputCapture:
    """The worker's stdout+stderr, cut into one segment per call by the worker's end markers.

    Every segment keeps its first `OUTPUT_HEAD` and last `OUTPUT_TAIL` bytes and counts the
    rest, so megabytes of printing cost nothing but the reading.
    """

    def __init__(self, token: str) -> None:
        self.prefix = f"\x00SSLG-END:{token}:".encode()
        self.pending = bytearray()
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.ended: list[int] = []

    def _add(self, data: bytes) -> None:
        self.total += len(data)
        room = OUTPUT_HEAD - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > OUTPUT_TAIL:
                del self.tail[: len(self.tail) - OUTPUT_TAIL]

    def feed(self, data: bytes) -> None:
        self.pending += data
        while True:
            at = self.pending.find(self.prefix)
            if at < 0:
                keep = len(self.prefix) + 24  # a marker may be split across reads
                if len(self.pending) > keep:
                    self._add(bytes(self.pending[:-keep]))
                    del self.pending[:-keep]
                return
            digits = at + len(self.prefix)
            # A real marker ends with a few digits and a NUL: look no further than that, so a
            # prefix without its end (the submission printing it) is plain output, never a
            # reason to hold everything after it.
            end = self.pending.find(b"\x00", digits, digits + MARKER_DIGITS + 1)
            if end < 0:
                if len(self.pending) - digits <= MARKER_DIGITS:  # may still arrive
                    self._add(bytes(self.pending[:at]))
                    del self.pending[:at]
                    return
                self._add(bytes(self.pending[: at + 1]))
                del self.pending[: at + 1]
                continue
            self._add(bytes(self.pending[:at]))
            try:
                self.ended.append(int(self.pending[digits:end]))
            except ValueError:
                pass
            del self.pending[: end + 1]

    def take(self, flush: bool = False) -> str:
        """The text captured since the last `take` (with the middle elided if it was long)."""
        if flush and self.pending:
            self._add(bytes(self.pending))
            self.pending.clear()
        head, tail, total = bytes(self.head), bytes(self.tail), self.total
        self.head, self.tail, self.total = bytearray(), bytearray(), 0
        if total == 0:
            return ""
        text = head.decode("utf-8", "replace")
        if tail:
            omitted = total - len(head) - len(tail)
            if omitted > 0:
                text += f"\n[... {omitted} bytes of output omitted ...]\n"
            text += tail.decode("utf-8", "replace")
        return text.replace("\x00", "")
