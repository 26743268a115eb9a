"""The control plane keeps requests' charset guesser out of its process (memory and start time)
and still reads the engine's UTF-8 answers right."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
from mikro import controlplane
controlplane.without_charset_guessing()
import sys
import docker, requests, requests.compat
assert requests.compat.chardet is None
assert sys.modules.get("charset_normalizer") is None and sys.modules.get("chardet") is None
response = requests.models.Response()
response._content = '{"message": "conflict: \\u00e9t\\u00e9"}'.encode()
response.status_code = 409
assert response.encoding is None and response.text == '{"message": "conflict: \\u00e9t\\u00e9"}'
assert response.json() == {"message": "conflict: \\u00e9t\\u00e9"}
print("ok")
"""


def test_no_charset_guesser_and_utf8_answers_read_right() -> None:
    # -W error: requests' warning about the missing guesser must be filtered, not printed.
    proc = subprocess.run([sys.executable, "-W", "error", "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "ok", "")
