"""The chunked upload's kernel side: chunks are assembled in order inside the private upload folder, files over
the limit and forged or out-of-order messages are refused, and an interrupted upload keeps the last complete one."""
from __future__ import annotations

from pathlib import Path

import pytest

from sopcoach.ui.chunked_upload import ChunkedUpload, clean_name
from support import UploadBrowser as Browser


@pytest.fixture
def upload(tmp_path) -> ChunkedUpload:
    return ChunkedUpload("en", max_bytes=1000, folder=tmp_path / "uploads", chunk_bytes=4)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_chunks_are_assembled_and_the_paths_handed_on(upload):
    """Two files sent in 4-byte slices arrive whole, in the order chosen; progress and acks follow each slice."""
    browser = Browser(upload)
    deals, events = b"deal_id,stage\nD1,won\n", b"deal_id,at\nD1,2025-01-02\n"
    browser.begin("b1", [("deals.csv", len(deals)), ("events.csv", len(events))])
    assert browser.kinds() == ["go"]
    browser.chunk("b1", 0, 0, deals[:4])
    assert upload.files[0] == {"name": "deals.csv", "size": len(deals), "received": 4, "state": "arriving"}
    assert browser.answers[-1] == {"type": "ack", "batch": "b1", "index": 0, "received": 4}
    for offset in range(4, len(deals), 4):
        browser.chunk("b1", 0, offset, deals[offset:offset + 4])
    assert upload.files[0]["state"] == "done" and browser.completed == []
    browser.send_file("b1", 1, events)
    assert browser.kinds()[-1] == "done"
    [paths] = browser.completed
    assert [p.name for p in paths] == ["deals.csv", "events.csv"] == [p.name for p in upload.paths]
    assert paths[0].read_bytes() == deals and paths[1].read_bytes() == events
    assert paths[0].parent.parent == upload.folder
    assert not list(upload.folder.rglob("*.part"))
    assert upload.message == "Received 2 files (0.0 MB)."


@pytest.mark.parametrize("offset", [8, 0, -4, "4", True])
def test_a_chunk_out_of_order_ends_the_upload_and_writes_nothing(upload, offset):
    """A slice at another offset than where the file ends (a gap, a repeat, a forged value) stops the upload."""
    browser = Browser(upload)
    browser.begin("b1", [("deals.csv", 12)])
    browser.chunk("b1", 0, 0, b"abcd")
    browser.chunk("b1", 0, offset, b"efgh")
    assert browser.kinds()[-1] == "stopped" and browser.completed == []
    assert files_under(upload.folder) == []
    assert "out of order" in upload.message and "incomplete and not used" in upload.message
    assert upload.files[0]["state"] == "stopped"
    browser.chunk("b1", 0, 4, b"efgh")  # the rest of a stopped upload is ignored
    assert files_under(upload.folder) == [] and browser.kinds()[-1] == "stopped"


@pytest.mark.parametrize(("index", "data"), [(0, b"abcdefgh"), (0, b"abcd" * 5), (1, b"ab"), (-1, b"ab"), (0, b"")])
def test_a_chunk_too_long_past_the_size_or_of_no_file_is_refused(upload, index, data):
    """A slice longer than chunk_bytes, past the declared size, for a file not in the set, or empty stops the upload."""
    browser = Browser(upload)
    browser.begin("b1", [("deals.csv", 6)])
    browser.chunk("b1", 0, 0, b"abcd")
    browser.chunk("b1", index, 4, data)
    assert browser.kinds()[-1] == "stopped" and files_under(upload.folder) == []


def test_a_file_over_the_limit_is_refused_in_chinese_by_default(tmp_path):
    """A set with a file over max_bytes is refused as a whole, before anything is written, in zh-CN by default."""
    upload = ChunkedUpload(max_bytes=5_000_000, folder=tmp_path / "u")
    browser = Browser(upload)
    browser.begin("b1", [("small.csv", 10), ("big.csv", 90_000_000)])
    assert browser.kinds() == ["refused"]
    assert upload.message == "未上传：big.csv（90.0 MB）超过上限 5 MB。已读取的数据不受影响。"
    assert upload.level == "warning" and files_under(upload.folder) == []
    browser.chunk("b1", 0, 0, b"abcd")  # nothing was started: chunks are ignored
    assert files_under(upload.folder) == []


def test_the_limit_and_types_are_said_in_english(upload):
    browser = Browser(upload)
    browser.begin("b1", [("big.csv", 2000), ("notes.exe", 4)])
    assert upload.message == ("Not uploaded: big.csv (0.0 MB) is over the limit of 0 MB; notes.exe: only .csv,.xlsx "
                              "files are accepted. Data already loaded is unaffected.")


@pytest.mark.parametrize(("name", "safe"), [
    ("../../etc/cron.d/x.csv", "x.csv"), ("..\\..\\Windows\\deals.csv", "deals.csv"), ("/abs/path.xlsx", "path.xlsx"),
    ("商机 2025.csv", "商机 2025.csv"), ("a\x00b\nc.csv", "abc.csv"), ("..", ""), ("...csv", "csv"),
    ("a<b>|c?.csv", "a_b__c_.csv"), ("x" * 300 + ".csv", "x" * 111 + ".csv"), (None, ""), (7, ""),
])
def test_file_names_are_cleaned(name, safe):
    assert clean_name(name) == safe


def test_forged_names_stay_inside_the_upload_folder_and_are_made_unique(upload, tmp_path):
    """Names with path parts are written inside the upload folder; two files of one name both arrive."""
    browser = Browser(upload)
    names = ["../../escape.csv", "/tmp/escape.csv", "sub/ESCAPE.csv", ".hidden.csv"]
    browser.begin("b1", [(n, 2) for n in names])
    for i in range(len(names)):
        browser.chunk("b1", i, 0, b"ok")
    [paths] = browser.completed
    assert [p.name for p in paths] == ["escape.csv", "escape (2).csv", "ESCAPE (3).csv", "hidden.csv"]
    root = upload.folder.resolve()
    assert all(root in p.resolve().parents for p in paths)
    assert not (tmp_path / "escape.csv").exists()


def test_an_interrupted_upload_keeps_the_last_complete_one_and_says_so(upload):
    """A new upload or Stop during an upload drops only the unfinished set; the last complete set stays usable."""
    browser = Browser(upload)
    browser.begin("b1", [("deals.csv", 4)])
    browser.chunk("b1", 0, 0, b"v1v1")
    first = list(upload.paths)
    browser.begin("b2", [("deals.csv", 8), ("events.csv", 2)])
    browser.chunk("b2", 0, 0, b"v2v2")
    browser.upload._on_msg(upload, {"type": "cancel", "batch": "b2"}, [])
    assert upload.message == ("Upload stopped: this upload is incomplete and not used (deals.csv arrived 0.0 of 0.0 MB; "
                              "events.csv arrived 0.0 of 0.0 MB; 0 files complete). The export already loaded and "
                              "the files of the last complete upload are unchanged. Upload again.")
    assert upload.paths == first and first[0].read_bytes() == b"v1v1"
    assert files_under(upload.folder) == first and len(browser.completed) == 1
    browser.begin("b3", [("deals.csv", 4)])
    browser.chunk("b3", 0, 0, b"v3")
    browser.begin("b4", [("deals.csv", 2)])  # a new choice interrupts b3
    assert upload.message.startswith("The previous upload was interrupted by a new one: this upload is incomplete")
    assert upload.message.endswith("Upload again. Uploading 1 file ...") and upload.level == "warning"
    browser.chunk("b4", 0, 0, b"v4")
    assert [p.read_bytes() for p in upload.paths] == [b"v4"]
    assert files_under(upload.folder) == upload.paths  # the set it replaced is removed


def test_an_empty_file_completes_at_once(upload):
    browser = Browser(upload)
    browser.begin("b1", [("empty.csv", 0)])
    assert browser.kinds() == ["go", "done"] and browser.completed[0][0].read_bytes() == b""


@pytest.mark.parametrize("message", [
    {"type": "begin", "batch": "", "files": [{"name": "a.csv", "size": 1}]},
    {"type": "begin", "batch": "b", "files": []},
    {"type": "begin", "batch": "b", "files": "a.csv"},
    {"type": "begin", "batch": "b", "files": [{"name": "a.csv", "size": -1}]},
    {"type": "begin", "batch": "b", "files": [{"name": "a.csv", "size": 1.5}]},
    {"type": "begin", "batch": "b", "files": [{"name": "a.csv"}] * 51},
    ["begin"],
])
def test_malformed_messages_start_nothing(upload, message):
    browser = Browser(upload)
    upload._on_msg(upload, message, [])
    browser.chunk("b", 0, 0, b"a")
    assert files_under(upload.folder) == [] and browser.completed == []
    assert "go" not in browser.kinds()


def test_a_file_the_server_cannot_store_ends_the_upload_with_a_message(upload, monkeypatch):
    """When writing fails (e.g. the disk is full), the upload stops, says why, and leaves no part file behind."""
    import sopcoach.ui.chunked_upload as module

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    browser = Browser(upload)
    browser.begin("b1", [("deals.csv", 8)])
    monkeypatch.setattr(module, "open", full, raising=False)
    browser.chunk("b1", 0, 0, b"abcd")
    assert browser.kinds()[-1] == "stopped" and browser.completed == []
    assert upload.message.startswith("The server could not store the uploaded file: this upload is incomplete")
    assert files_under(upload.folder) == []
