"""How a CRM export's file is written: encoding, delimiter, decimal mark and size, declared or detected.

Issue 14: a cp1252 file was read as GB18030 (``Müller`` -> ``M黮ler``) with no word; ``;``-separated
files with decimal commas could not be read; a small XLSX that unpacks to a huge sheet hung ``analyze``.
"""
from __future__ import annotations

import io
import textwrap
import time
import zipfile

import pytest

from sopcoach.crm.dialect import detect_decimal, detect_encoding
from sopcoach.crm.reading import decode_bytes, read_export
from sopcoach.errors import ContentError
from support import CASES

#: a German CRM's deals export as Excel writes "CSV (Trennzeichen-getrennt)": ';', decimal commas
GERMAN = """\
source: {{id: de, name: German CRM export, timezone: Europe/Berlin{extra}}}
stages: {{Gewonnen: won, Angebot: quotation, Verloren: lost}}
tables:
  - name: deals
    kind: deals
    files: ["*.csv", "*.xlsx"]
    fields:
      deal_id: Verkaufschance
      account: Kunde
      stage: Phase
      amount: Betrag
      created: {{column: Erstellt, formats: ["%d.%m.%Y"]}}
"""
ROWS = ["Verkaufschance;Kunde;Phase;Betrag;Erstellt",
        "V-001;Müller GmbH;Gewonnen;1.234,56;05.03.2024",
        "V-002;Zoë Café SARL;Angebot;12,50;06.03.2024",
        "V-003;Bäckerei Groß;Verloren;3.000,00;07.03.2024",
        "V-004;Jäger & Söhne;Angebot;980;08.03.2024"]
ACCOUNTS = ["Müller GmbH", "Zoë Café SARL", "Bäckerei Groß", "Jäger & Söhne"]
AMOUNTS = [1234.56, 12.5, 3000.0, 980.0]


def german(tmp_path, extra: str = "") -> str:
    path = tmp_path / "de.yaml"
    path.write_text(GERMAN.format(extra=extra), encoding="utf-8")
    return str(path)


def export(tmp_path, rows, encoding: str, name: str = "Verkaufschancen.csv"):
    path = tmp_path / name
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode(encoding))
    return path


# ------------------------------------------------------------------------------ encoding


def test_cp1252_file_with_letters_other_codepages_read_differently_is_refused(tmp_path):
    """Issue 14: Zoë reads as Zoė in cp1257; the guess is refused with both readings and the fix, not
    read as GB18030 ('M黮ler') or any other mojibake."""
    with pytest.raises(ContentError) as exc:
        read_export(export(tmp_path, ROWS, "cp1252"), german(tmp_path))
    text = str(exc.value)
    assert "Verkaufschancen.csv" in text and "encoding cannot be told" in text
    assert "'V-002;Zoë Café SARL" in text and "Zoė" in text
    assert "save it as 'CSV UTF-8' or set source.encoding: <the CRM's encoding, e.g. cp1252> in the mapping" in text


def test_cp1252_file_is_read_right_with_the_declared_encoding(tmp_path):
    """The fix named above works: source.encoding: cp1252 reads every name right and says so."""
    data = read_export(export(tmp_path, ROWS, "cp1252"), german(tmp_path, ", encoding: cp1252"))
    assert data.deals["account"].tolist() == ACCOUNTS
    assert data.deals["amount"].tolist() == AMOUNTS
    assert "decoded as cp1252 (declared)" in data.files[0].describe("en")


def test_cp1252_file_all_candidates_read_alike_is_detected_with_its_confidence(tmp_path):
    """German letters that every Western code page writes alike are read right, reported as cp1252 with
    the detector's confidence."""
    rows = [r.replace("Zoë Café SARL", "Kölner Bürobedarf") for r in ROWS]
    data = read_export(export(tmp_path, rows, "cp1252"), german(tmp_path))
    assert data.deals["account"].tolist()[:2] == ["Müller GmbH", "Kölner Bürobedarf"]
    f = data.files[0]
    assert f.encoding == "cp1252" and f.decoding.how == "detected" and f.confidence >= 0.9
    assert f"decoded as cp1252 (detected, confidence {f.confidence:.2f})" in f.describe("en")


def test_one_letter_that_no_code_page_agrees_on_is_refused():
    """A lone 0xFC (ü in cp1252, ³ in cp775, Ř in cp852 ...) cannot be told: refused, never M黮ler."""
    with pytest.raises(ContentError, match="encoding cannot be told"):
        decode_bytes("name,amount\nMüller,12\n".encode("cp1252"), name="x.csv")


def test_gbk_case_19_is_detected_as_gb18030_with_confidence():
    """Case 19: the GBK export still reads; the report gives the confidence and the codec set aside."""
    decoding = detect_encoding((CASES / "19_crm_gbk_chinese.csv").read_bytes())
    assert (decoding.codec, decoding.how, decoding.confidence) == ("gb18030", "detected", 1.0)
    assert decoding.describe("en").startswith("GB18030 (detected, confidence 1.00; also readable as cp949")


def test_utf8_valid_at_the_start_then_cp1252_is_decided_by_the_later_lines(tmp_path):
    """A file that is ASCII for its first 64 KB and cp1252 after: the strict UTF-8 parse fails and the
    lines with non-ASCII bytes decide; the names are right."""
    rows = ["Verkaufschance;Kunde;Phase;Betrag;Erstellt"]
    rows += [f"V-{i:05d};Acme Trading Company;Angebot;1.000,00;05.03.2024" for i in range(2000)]
    names = ["Müller GmbH", "Jäger & Söhne", "Bäckerei Groß", "Kölner Bürobedarf"]
    rows += [f"V-9{i};{n};Gewonnen;1.234,56;05.03.2024" for i, n in enumerate(names)]
    data = read_export(export(tmp_path, rows, "cp1252"), german(tmp_path))
    assert data.deals["account"].iloc[-4:].tolist() == names and data.files[0].encoding == "cp1252"


def test_declared_encoding_that_does_not_fit_is_refused(tmp_path):
    """Declared UTF-8 on cp1252 bytes: refused with the byte and the fix, not decoded another way."""
    with pytest.raises(ContentError) as exc:
        read_export(export(tmp_path, ROWS, "cp1252"), german(tmp_path, ", encoding: utf-8"))
    assert "not valid UTF-8" in str(exc.value) and "correct source.encoding" in str(exc.value)


def test_unknown_encoding_name_is_a_mapping_error_with_its_line(tmp_path):
    with pytest.raises(ContentError) as exc:
        read_export(export(tmp_path, ROWS, "utf-8"), german(tmp_path, ", encoding: windows-9999"))
    text = str(exc.value)
    assert "de.yaml:1:" in text and "encoding" in text and "'windows-9999' is not a known text encoding" in text


# ------------------------------------------------------------------------- delimiter, decimal


def test_german_excel_csv_with_bom_semicolons_and_decimal_commas(tmp_path):
    """Issue 14: ';' and '1.234,56' are detected and reported; the amounts are right."""
    data = read_export(export(tmp_path, ROWS, "utf-8-sig"), german(tmp_path))
    assert data.deals["account"].tolist() == ACCOUNTS
    assert data.deals["amount"].tolist() == AMOUNTS
    assert data.deals["outcome"].tolist() == ["won", "open", "lost", "open"]
    assert data.problems == ()
    assert data.files[0].describe("en").endswith(
        "decoded as UTF-8 with BOM, delimiter ';' (detected), decimal mark ',' (detected from '1.234,56')")


def test_french_export_grouping_digits_with_nonbreaking_spaces(tmp_path):
    """'1 234,56' (U+202F and U+00A0 between groups) in a tab-separated file: 1234.56."""
    rows = [r.replace(";", "\t").replace("1.234,56", "1\u202f234,56").replace("3.000,00", "3\u00a0000,00")
            for r in ROWS]
    data = read_export(export(tmp_path, rows, "utf-8"), german(tmp_path))
    assert data.deals["amount"].tolist() == AMOUNTS
    assert "delimiter TAB (detected), decimal mark ','" in data.files[0].describe("en")


def test_only_values_that_read_both_ways_are_refused(tmp_path):
    """'1,234' alone in a ';' file is 1234 or 1.234: refused with the column and the fix."""
    rows = [ROWS[0], "V-1;A;Gewonnen;1,234;05.03.2024", "V-2;B;Angebot;980;06.03.2024"]
    with pytest.raises(ContentError) as exc:
        read_export(export(tmp_path, rows, "utf-8"), german(tmp_path))
    text = str(exc.value)
    assert "Verkaufschancen.csv:1:4: Betrag: the decimal mark cannot be told: '1,234'" in text
    assert "set source.decimal: ',' (or '.') in the mapping" in text
    data = read_export(export(tmp_path, rows, "utf-8"), german(tmp_path, ", decimal: ','"))
    assert data.deals["amount"].tolist() == [1.234, 980.0]
    assert "decimal mark ',' (declared)" in data.files[0].describe("en")


def test_values_showing_both_decimal_marks_are_refused(tmp_path):
    rows = [ROWS[0], "V-1;A;Gewonnen;1,234.50;05.03.2024", "V-2;B;Angebot;12,5;06.03.2024"]
    with pytest.raises(ContentError, match="'1,234.50' has '.' and '12,5' has ','"):
        read_export(export(tmp_path, rows, "utf-8"), german(tmp_path))


@pytest.mark.parametrize(("values", "mark"), [
    (["1.234,56"], ","), (["1 234,56"], ","), (["12,5"], ","), (["0,125"], ","), (["1.234.567"], ","),
    (["1,234,567"], "."), (["12.50"], "."), (["$22,700.00"], "."), (["900", "-5"], None),
    (["1,234", "12,5"], ","), (["€ 1.234", "3,5%"], ","),
])
def test_decimal_mark_evidence(values, mark):
    assert detect_decimal(values)[0] == mark


def test_header_with_a_comma_in_a_semicolon_file_is_split_on_semicolons(tmp_path):
    """'Betrag, netto' in the header and decimal commas in the rows: ';' is the one delimiter that
    splits every line evenly (csv.Sniffer would prefer ',')."""
    rows = [ROWS[0].replace("Betrag", "Betrag, netto")] + ROWS[1:]
    body = GERMAN.replace("amount: Betrag", "amount: 'Betrag, netto'")
    (tmp_path / "de.yaml").write_text(body.format(extra=""), encoding="utf-8")
    data = read_export(export(tmp_path, rows, "utf-8"), tmp_path / "de.yaml")
    assert data.deals["amount"].tolist() == AMOUNTS


def test_two_delimiters_that_both_split_evenly_are_refused(tmp_path):
    rows = ["Verkaufschance;Betrag, netto", "V-1;1,5", "V-2;2,5"]
    with pytest.raises(ContentError) as exc:
        read_export(export(tmp_path, rows, "utf-8"), german(tmp_path))
    assert "Verkaufschancen.csv:1: the field delimiter cannot be told (',' and ';' each split every line evenly); " \
           "set source.delimiter in the mapping" in str(exc.value)


def test_declared_delimiter_that_does_not_fit_names_the_one_found(tmp_path):
    """A mapping declaring ',' on a ';' file: the missing column's message says which to declare."""
    with pytest.raises(ContentError) as exc:
        read_export(export(tmp_path, ROWS, "utf-8"), german(tmp_path, ", delimiter: ','"))
    assert "separate fields with ';', not ',': set source.delimiter: ';' in the mapping" in str(exc.value)


def test_bad_delimiter_and_decimal_declarations_are_mapping_errors(tmp_path):
    with pytest.raises(ContentError) as exc:
        read_export(export(tmp_path, ROWS, "utf-8"), german(tmp_path, ", delimiter: ';;', decimal: 'x'"))
    text = str(exc.value)
    assert "';;' is not a field delimiter" in text and "'x' is not a decimal mark" in text


def test_xlsx_numbers_keep_their_value_with_decimal_commas(tmp_path):
    """Excel's own numbers (floats) are not re-read with the declared decimal comma; its text cells are."""
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in [r.split(";") for r in ROWS[:3]]:
        ws.append(row)
    ws["D2"] = 1234.56  # a number cell; D3 stays the text '12,50'
    wb.save(tmp_path / "Verkaufschancen.xlsx")
    data = read_export(tmp_path / "Verkaufschancen.xlsx", german(tmp_path, ", decimal: ','"))
    assert data.deals["amount"].tolist() == [1234.56, 12.5]


# ----------------------------------------------------------------------------------- sizes


def _zip_bomb_xlsx(path, unpacked_mb: int) -> None:
    """A valid workbook whose sheet is ``unpacked_mb`` MB of rows deflated to a few hundred KB."""
    import openpyxl
    buf = io.BytesIO()
    wb = openpyxl.Workbook()
    wb.active.append(["Verkaufschance", "Betrag"])
    wb.save(buf)
    row = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>'
    chunk = row * (1_000_000 // len(row))
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for info in src.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                out.writestr(info, src.read(info))
                continue
            with out.open(info.filename, "w", force_zip64=True) as fh:
                fh.write(b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.'
                         b'org/spreadsheetml/2006/main"><sheetData>')
                for _ in range(unpacked_mb):
                    fh.write(chunk)
                fh.write(b"</sheetData></worksheet>")


def test_xlsx_zip_bomb_is_refused_before_it_is_opened(tmp_path):
    """Issue 14: a small XLSX that unpacks to 100 MB of one repeated row is refused within a second."""
    path = tmp_path / "Verkaufschancen.xlsx"
    _zip_bomb_xlsx(path, 100)
    assert path.stat().st_size < 1_000_000
    start = time.perf_counter()
    with pytest.raises(ContentError) as exc:
        read_export(path, german(tmp_path))
    assert time.perf_counter() - start < 1.0
    text = str(exc.value)
    assert "Verkaufschancen.xlsx" in text and "xl/worksheets/sheet1.xml unpacks from" in text
    assert "the limit is 100" in text and "export the data again as 'CSV UTF-8'" in text


def test_xlsx_unpacked_size_limit_comes_from_the_mapping(tmp_path):
    """Case 20b (a 5 KB workbook) with source.max_unpacked_mb: 0.001 is refused naming the limit."""
    body = textwrap.dedent("""\
        source: {id: t, name: t, max_unpacked_mb: 0.001}
        tables: [{name: deals, kind: deals, files: ["*.xlsx"], fields: {stage: stage}}]
        """)
    (tmp_path / "m.yaml").write_text(body, encoding="utf-8")
    with pytest.raises(ContentError) as exc:
        read_export(("deals.xlsx", (CASES / "20b_crm_excel_serial_dates.xlsx").read_bytes()), tmp_path / "m.yaml")
    text = str(exc.value)
    assert "deals.xlsx" in text and "above the limit of 0.001 MB (source.max_unpacked_mb)" in text


def test_csv_above_the_size_limit_is_refused_before_it_is_read(tmp_path):
    """A file above max_file_mb (argument or mapping) is refused with its size, the limit and the fix."""
    path = export(tmp_path, ROWS * 20, "utf-8")
    with pytest.raises(ContentError) as exc:
        read_export(path, german(tmp_path), max_file_mb=0.001)
    text = str(exc.value)
    assert "Verkaufschancen.csv" in text and "above the limit of 0.001 MB (source.max_file_mb)" in text
    assert "raise source.max_file_mb in the mapping" in text
    with pytest.raises(ContentError, match="above the limit of 0.002 MB"):
        read_export(path, german(tmp_path, ", max_file_mb: 0.002"))



def test_a_lone_best_guess_with_low_confidence_is_refused():
    """Cyrillic text followed by bytes no code page reads cleanly: the one candidate left (ptcp154)
    scores 0.84, under 0.9, and is refused with its confidence and the fix."""
    raw = "Имя,Сумма\nИван Петров,100\nМария,200\n".encode("cp1251") + b"x\x98\x98y\n"
    with pytest.raises(ContentError) as exc:
        decode_bytes(raw, name="leads.csv")
    text = str(exc.value)
    assert "leads.csv: the file is not UTF-8 and the best guess, ptcp154, has a confidence of only 0.84" in text
    assert "save it as 'CSV UTF-8' or set source.encoding: ptcp154 in the mapping" in text


def test_sheet_beyond_excels_row_limit_is_refused(tmp_path):
    """A sheet whose dimension claims 2,000,000 rows was not written by Excel: refused before its rows."""
    import openpyxl
    wb = openpyxl.Workbook()
    for row in [r.split(";") for r in ROWS]:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    path = tmp_path / "Verkaufschancen.xlsx"
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b'<dimension ref="A1:E5" />', b'<dimension ref="A1:E2000000" />')
                assert b"E2000000" in data
            out.writestr(info, data)
    with pytest.raises(ContentError, match="more than Excel's 1,048,576 rows or 16,384 columns"):
        read_export(path, german(tmp_path))


def test_the_file_line_is_said_in_chinese_too(tmp_path):
    """The default UI language: how the file was read, in Simplified Chinese."""
    data = read_export(export(tmp_path, ROWS, "utf-8-sig"), german(tmp_path))
    assert data.files[0].describe("zh-CN").endswith(
        "编码 UTF-8 with BOM，分隔符 ';'（检测），小数点 ','（由 '1.234,56' 检测）")


def test_blank_edges_are_stripped_from_ids_and_values():
    """Blanks (Python's str.isspace: ASCII, no-break, em and ideographic spaces) around ids and values
    are stripped; a cell of blanks only is missing; blanks inside a value stay."""
    raw = ("Deal ID,Stage,Amount,Owner\n"
           "\u3000001 ,赢单,100,\u00a0Li Na\u2003\n"
           "002,赢单,5, \t\n"
           "\u00a0 ,赢单,7,Wang\n").encode("utf-8")
    data = read_export(("deals.csv", raw), source="simulated")
    deals = data.deals
    assert deals["deal_id"].tolist()[:2] == ["001", "002"]
    assert deals["deal_id"].isna().tolist() == [False, False, True]
    assert deals["owner"].tolist()[0] == "Li Na"
    assert deals["owner"].isna().tolist() == [False, True, False]
    assert any("deal_id: a value is required" in p.message for p in data.problems)
