"""model2metal.capture: what C code writes to descriptor 2 is kept, fd 2 restored."""

import os

from model2metal.capture import CStderr


def test_captures_fd2_without_colour_codes_and_restores_it(capfd):
    with CStderr() as err:
        os.write(2, b"\x1b[31mnative warning\x1b[0m\n")
    assert err.text == "native warning\n"
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_restores_fd2_when_the_block_raises(capfd):
    try:
        with CStderr() as err:
            os.write(2, b"inside\n")
            raise ValueError("boom")
    except ValueError:
        pass
    assert err.text == "inside\n"
    os.write(2, b"outside\n")
    assert capfd.readouterr().err == "outside\n"
