"""Running `python -m transformer` in the test process, as the command-line tests do."""

from transformer.__main__ import main


def run(argv, capsys):
    """main(argv) in this process: (exit status, stdout, stderr)."""
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def bad(argv, capsys, message, status=2):
    """main(argv) fails with `status` and one stderr line that holds `message`, no traceback."""
    code, _, err = run(argv, capsys)
    assert code == status, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
