"""Reading CRM exports: encodings, dates, numbers, ids, mappings, and the real Maven/Salesforce/Zoho files."""
from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from sopcoach.crm.mapping import EXCEL_SERIAL, builtin_mapping_path, load_mapping
from sopcoach.crm.quality import quality_report
from sopcoach.crm.reading import decode_bytes, detect_source, read_export, stage_paths
from sopcoach.errors import ContentError
from support import CASES, SHARED

CRM = SHARED / "data" / "crm"
MAVEN = CRM / "maven_crm_sales_opportunities"
SALESFORCE = CRM / "salesforce_devorg_export_earthfink"
ZOHO = CRM / "zoho_crm_export_sample"


def mapping(tmp_path, body: str, name: str = "mapping.yaml"):
    """Write a mapping YAML (dedented) and return its path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


CASE_MAPPING = """\
    source: {id: cases, name: shared cases, timezone: UTC}
    stages: {Qualify: needs_analysis, Proposal: solution_demo, Won: won, Lead: first_contact,
             成交: won, 方案: solution_demo}
    tiers: {金牌: A, 银牌: B, Gold: A, Silver: B}
    tables:
      - name: deals
        kind: deals
        files: ["*.csv", "*.xlsx"]
        fields:
          deal_id: [Deal ID, deal_id]
          stage: [Stage, stage, 阶段]
          owner: [Owner]
          amount: [Amount, amount, 金额]
          account: [客户名称, customer_id]
          tier: [客户等级]
          created: {column: [created_at, 创建日期], formats: ["%Y-%m-%d", excel_serial]}
    """
#: case 19 has no id column: the deal ids are made from the row numbers
NO_ID_MAPPING = CASE_MAPPING.replace("          deal_id: [Deal ID, deal_id]\n", "")


def row_problems(data):
    """The problems located on data rows (the header is row 1: missing optional columns)."""
    return [p for p in data.problems if p.line > 1]


@pytest.fixture(scope="module")
def playbook_m():
    from sopcoach.content.playbook import load_playbook
    from support import ROOT
    return load_playbook(ROOT / "playbook")


@pytest.fixture(scope="module")
def maven(playbook_m):
    return read_export([MAVEN], "maven", playbook=playbook_m)


@pytest.fixture(scope="module")
def salesforce(playbook_m):
    return read_export([SALESFORCE], "salesforce", playbook=playbook_m)


@pytest.fixture(scope="module")
def zoho(playbook_m):
    return read_export([ZOHO], "zoho", playbook=playbook_m)


# ------------------------------------------------------------------------------ encodings


def test_bom_is_dropped_from_the_first_header(tmp_path):
    """Case 18: a UTF-8 BOM never reaches the first column name, so 'Deal ID' is found."""
    data = read_export(CASES / "18_crm_bom.csv", mapping(tmp_path, CASE_MAPPING))
    assert data.deals["deal_id"].tolist() == ["D-1001", "D-1002"]
    assert data.files[0].encoding == "utf-8-sig"
    assert row_problems(data) == []


def test_bom_is_dropped_from_uploaded_bytes(tmp_path):
    """Case 18: uploaded bytes (the Voila path) with a BOM also map 'Deal ID'."""
    raw = (CASES / "18_crm_bom.csv").read_bytes()
    data = read_export(("upload.csv", raw), mapping(tmp_path, CASE_MAPPING))
    assert data.deals["deal_id"].tolist() == ["D-1001", "D-1002"]


def test_decode_bytes_strips_bom():
    """Case 18: decoding text with a BOM gives the header without '\\ufeff'."""
    text, codec = decode_bytes((CASES / "18_crm_bom.csv").read_bytes())
    assert text.startswith("Deal ID,") and codec == "utf-8-sig"


def test_gbk_file_is_not_valid_utf8():
    """Case 19: strict UTF-8 refuses the GBK bytes instead of mis-reading them."""
    with pytest.raises(ContentError, match="not valid UTF-8"):
        decode_bytes((CASES / "19_crm_gbk_chinese.csv").read_bytes(), "utf-8")


def test_gbk_file_is_decoded_as_gb18030_and_reported(tmp_path):
    """Case 19: the GBK export is decoded as GB18030 and the report says so."""
    data = read_export(CASES / "19_crm_gbk_chinese.csv", mapping(tmp_path, NO_ID_MAPPING))
    assert data.files[0].encoding == "gb18030"
    assert "decoded as GB18030" in data.files[0].describe("en")


def test_gbk_headers_map_through_aliases(tmp_path):
    """Case 19: 客户名称/客户等级/阶段/金额/创建日期 map onto account, tier, stage, amount, created."""
    d = read_export(CASES / "19_crm_gbk_chinese.csv", mapping(tmp_path, NO_ID_MAPPING)).deals
    assert d["account"].tolist() == ["华东贸易", "北方物流"]
    assert d["stage"].tolist() == ["won", "solution_demo"]
    assert d["amount"].tolist() == [12000.0, 8500.0]
    assert d["created"].tolist() == [pd.Timestamp("2024-03-05", tz="UTC"), pd.Timestamp("2024-03-07", tz="UTC")]


def test_gbk_tiers_map_onto_playbook_tiers(tmp_path):
    """Case 19: the tiers 金牌/银牌 (Gold/Silver) map onto the playbook's A/B."""
    d = read_export(CASES / "19_crm_gbk_chinese.csv", mapping(tmp_path, NO_ID_MAPPING)).deals
    assert d["tier"].tolist() == ["A", "B"]


def test_bytes_in_no_supported_encoding_are_refused():
    """Bytes that are neither UTF-8 nor GB18030 are refused with the fix, never read as latin-1."""
    with pytest.raises(ContentError, match="save it as 'CSV UTF-8' or set source.encoding"):
        decode_bytes(b"id,name\n1,\x80\x80\n")


# ------------------------------------------------------------------------------ dates


def test_excel_serials_and_text_dates_in_csv(tmp_path):
    """Case 20: 45383, 45292.6458333333 and 2024-04-02 become 04-01 00:00, 01-01 15:30, 04-02 00:00."""
    data = read_export(CASES / "20_crm_excel_serial_dates.csv", mapping(tmp_path, CASE_MAPPING))
    assert data.deals["created"].tolist() == [pd.Timestamp("2024-04-01 00:00", tz="UTC"),
                                              pd.Timestamp("2024-01-01 15:30", tz="UTC"),
                                              pd.Timestamp("2024-04-02 00:00", tz="UTC")]
    assert row_problems(data) == []


def test_excel_serials_and_text_dates_in_xlsx(tmp_path):
    """Case 20: the same values stored as General numbers and text in an XLSX give the same dates."""
    data = read_export(CASES / "20b_crm_excel_serial_dates.xlsx", mapping(tmp_path, CASE_MAPPING))
    assert data.deals["created"].tolist() == [pd.Timestamp("2024-04-01 00:00", tz="UTC"),
                                              pd.Timestamp("2024-01-01 15:30", tz="UTC"),
                                              pd.Timestamp("2024-04-02 00:00", tz="UTC")]
    assert data.files[0].encoding == "xlsx"


def test_serial_numbers_need_a_declared_format(tmp_path):
    """Case 20: without excel_serial in formats, the serials are row problems with a hint, not guesses."""
    body = CASE_MAPPING.replace('["%Y-%m-%d", excel_serial]', '["%Y-%m-%d"]')
    data = read_export(CASES / "20_crm_excel_serial_dates.csv", mapping(tmp_path, body))
    problems = row_problems(data)
    assert [(p.line, p.field) for p in problems] == [(2, "created_at"), (3, "created_at")]
    assert f"add '{EXCEL_SERIAL}' to formats" in problems[0].message
    assert data.deals["created"].isna().tolist() == [True, True, False]


def test_serial_outside_the_plausible_range_is_reported(tmp_path):
    """Case 20: a number outside 20000-80000 in a date column is reported, not turned into 1900 or 1970."""
    src = tmp_path / "deals.csv"
    src.write_text("deal_id,created_at\nD-1,123\nD-2,45383\n", encoding="utf-8")
    data = read_export(src, mapping(tmp_path, CASE_MAPPING))
    (p,) = row_problems(data)
    assert p.line == 2 and "only between 20000 and 80000" in p.message


def test_dates_are_never_guessed(tmp_path):
    """A date written in another format than declared is a row problem naming the file, row and column."""
    src = tmp_path / "deals.csv"
    src.write_text("deal_id,created_at\nD-1,03/05/2024\nD-2,2024-03-05\n", encoding="utf-8")
    data = read_export(src, mapping(tmp_path, CASE_MAPPING))
    (p,) = row_problems(data)
    assert (p.line, p.column, p.field) == (2, 2, "created_at")
    assert "'03/05/2024' does not match the declared date format(s) '%Y-%m-%d', 'excel_serial'" in p.message
    assert p.path.endswith("deals.csv")


def test_nonexistent_local_time_is_flagged_not_shifted(tmp_path):
    """Case 28: a CRM time skipped by the DST change (Berlin 2024-03-31 02:30) is a row problem, not 03:30."""
    body = CASE_MAPPING.replace("timezone: UTC", "timezone: Europe/Berlin").replace(
        '["%Y-%m-%d", excel_serial]', '["%Y-%m-%d %H:%M"]')
    src = tmp_path / "deals.csv"
    src.write_text("deal_id,created_at\nD-1,2024-03-31 02:30\nD-2,2024-03-31 03:30\n", encoding="utf-8")
    data = read_export(src, mapping(tmp_path, body))
    (p,) = row_problems(data)
    assert p.line == 2 and "does not exist in Europe/Berlin" in p.message
    assert pd.isna(data.deals["created"][0])
    assert data.deals["created"][1] == pd.Timestamp("2024-03-31 01:30", tz="UTC")


def test_local_times_are_stored_in_utc(tmp_path):
    """Naive export times are placed in the mapping's zone and stored in UTC."""
    body = CASE_MAPPING.replace("timezone: UTC", "timezone: Asia/Shanghai")
    src = tmp_path / "deals.csv"
    src.write_text("deal_id,created_at\nD-1,2025-03-05\n", encoding="utf-8")
    data = read_export(src, mapping(tmp_path, body))
    assert data.deals["created"][0] == pd.Timestamp("2025-03-04 16:00", tz="UTC")


# ------------------------------------------------------------------------------ numbers and ids


def test_thousands_separators_become_numbers(tmp_path):
    """Case 22: "12,500", "1,200.50" and 900 are 12500.0, 1200.5, 900.0 and sum to 14600.5."""
    d = read_export(CASES / "22_crm_thousands.csv", mapping(tmp_path, CASE_MAPPING)).deals
    assert d["amount"].dtype == "float64"
    assert d["amount"].tolist() == [12500.0, 1200.5, 900.0]
    assert d["amount"].sum() == 14600.5


def test_unparseable_amounts_are_listed_by_row(tmp_path):
    """Case 22: a value that is not a number is listed by row and never reaches the sums."""
    src = tmp_path / "deals.csv"
    src.write_text('deal_id,amount\nD-1,"12,50"\nD-2,abc\nD-3,"1,000"\n', encoding="utf-8")
    data = read_export(src, mapping(tmp_path, CASE_MAPPING.replace("timezone: UTC}", "timezone: UTC, decimal: '.'}")))
    problems = row_problems(data)
    assert [p.line for p in problems] == [2, 3]
    assert "'12,50' is not a number" in problems[0].message
    assert data.deals["amount"].sum() == 1000.0


def test_ids_keep_leading_zeros_and_tiers_join(tmp_path):
    """Case 24: customer ids stay '00123'/'04567' and the tier map joins to Gold/Silver (A/B)."""
    body = CASE_MAPPING.rstrip(" ") + textwrap.indent(textwrap.dedent("""\
        - name: tiers
          kind: accounts
          files: ["24b_*.csv"]
          fields: {account: customer_id, tier: tier}
        """), "      ")
    body = body.replace('files: ["*.csv", "*.xlsx"]', 'files: ["24_*.csv"]')
    data = read_export([CASES / "24_crm_leading_zero_ids.csv", CASES / "24b_tier_map.csv"], mapping(tmp_path, body))
    assert data.deals["account"].tolist() == ["00123", "04567"]
    assert data.deals["tier"].tolist() == ["A", "B"]
    assert data.deals["tier"].notna().all()


# ------------------------------------------------------------------------------ mappings


def test_builtin_mappings_load_against_the_playbook(playbook_m):
    """The four built-in mappings are valid and their targets exist in the playbook."""
    for name in ("maven", "salesforce", "zoho", "simulated"):
        assert load_mapping(name, playbook_m).id == name


def test_date_field_without_formats_is_rejected(tmp_path):
    """A mapping that leaves a date format to guessing is refused with its line."""
    body = CASE_MAPPING.replace('{column: [created_at, 创建日期], formats: ["%Y-%m-%d", excel_serial]}',
                                "[created_at]")
    with pytest.raises(ContentError) as err:
        load_mapping(mapping(tmp_path, body))
    (p,) = err.value.problems
    assert p.line == 6 and "date field 'created' needs 'formats'" in p.message


def test_stage_target_must_be_a_playbook_stage(tmp_path, playbook_m):
    """A stage mapped onto an unknown playbook stage is refused, naming the line and the known ids."""
    body = CASE_MAPPING.replace("Qualify: needs_analysis", "Qualify: qualify")
    with pytest.raises(ContentError) as err:
        load_mapping(mapping(tmp_path, body), playbook_m)
    (p,) = err.value.problems
    assert (p.line, p.field) == (2, "stages.Qualify")
    assert "'qualify' is not a playbook stage; use one of first_contact" in p.message


def test_missing_column_names_file_and_mapping_line(tmp_path):
    """A required column missing from the file is refused, naming the header and the mapping line."""
    body = CASE_MAPPING.replace("deal_id: [Deal ID, deal_id]", "deal_id: [Opportunity]")
    with pytest.raises(ContentError) as err:
        read_export(CASES / "22_crm_thousands.csv", mapping(tmp_path, body))
    (p,) = err.value.problems
    assert p.path.endswith("22_crm_thousands.csv") and p.line == 1 and p.field == "deal_id"
    assert "column 'Opportunity' not found in the header (columns: deal_id, amount)" in p.message
    assert "mapping.yaml:10" in p.message


def test_source_is_recognised_from_file_names():
    """Each real export folder is recognised as its built-in source."""
    assert [detect_source([d]).id for d in (MAVEN, SALESFORCE, ZOHO)] == ["maven", "salesforce", "zoho"]


# ------------------------------------------------------------------------------ real exports


def test_maven_deals_and_stages(maven):
    """The Maven pipeline has 8,800 deals: 4,238 won, 2,473 lost, 1,589 engaging, 500 prospecting."""
    counts = maven.deals["stage_raw"].value_counts().to_dict()
    assert counts == {"Won": 4238, "Lost": 2473, "Engaging": 1589, "Prospecting": 500}
    assert maven.problems == ()


def test_maven_blank_accounts_are_open_deals(maven, playbook_m):
    """Data quality: 1,425 open Maven deals have no account."""
    q = quality_report(maven, playbook_m, lang="en")
    blank = q.details[q.details["check"] == "blank_account"]
    open_ids = set(maven.deals.loc[maven.deals["outcome"] == "open", "deal_id"])
    assert len(blank) == 1425 and set(blank["deal_id"]) <= open_ids


def test_maven_unknown_product_gtxpro(maven, playbook_m):
    """Data quality: product 'GTXPro' is not in the product list (which spells it 'GTX Pro')."""
    q = quality_report(maven, playbook_m, lang="en")
    assert q.summary.loc["unknown_product", "message"] == "products not in the product list: GTXPro"
    assert set(q.details.loc[q.details["check"] == "unknown_product", "value"]) == {"GTXPro"}


def test_maven_teams_and_regions_join_from_sales_teams(maven):
    """Each Maven deal gets its agent's manager (team) and regional office (region)."""
    assert maven.deals["team"].notna().all() and set(maven.deals["region"]) == {"Central", "East", "West"}


def test_salesforce_stage_path_follows_time_not_file_order(salesforce):
    """OpportunityHistory gives each opportunity's stage path in time order."""
    paths = stage_paths(salesforce, raw=True)
    assert paths["006bm00000LKg0bAAD"] == ["Prospecting", "Closed Lost"]
    assert paths["006bm00000LKgOnAAL"] == ["Prospecting", "Closed Won", "Closed Lost"]
    assert paths["006bm00000LKdM8AAL"] == ["Prospecting", "Proposal/Price Quote"]


def test_salesforce_stage_path_in_playbook_stages(salesforce):
    """The stage path maps onto playbook stages and outcomes."""
    assert stage_paths(salesforce)["006bm00000LKgS1AAL"] == ["first_contact", "needs_analysis"]


def test_salesforce_won_then_lost_is_reported(salesforce, playbook_m):
    """Data quality: the 7 opportunities closed won and then closed lost are reported."""
    q = quality_report(salesforce, playbook_m, lang="en")
    assert q.count("stage_regression") == 7


def test_salesforce_close_before_creation_is_a_negative_duration(salesforce, playbook_m):
    """Data quality: opportunities whose CloseDate precedes their CreatedDate are reported."""
    q = quality_report(salesforce, playbook_m, lang="en")
    assert q.summary.loc["negative_duration", "message"].startswith("19 deals closed before they were created")


def test_zoho_duplicate_calls_are_reported_not_merged(zoho, playbook_m):
    """The Zoho calls repeated under other ids are reported, and all 4,100 calls are kept."""
    calls = zoho.events[zoho.events["kind"] == "call"]
    assert len(calls) == 4100
    assert calls["duplicate_of"].notna().sum() == 2572
    q = quality_report(zoho, playbook_m, lang="en")
    assert "2,572 call" in q.summary.loc["duplicate_event", "message"]


def test_zoho_two_date_formats_are_reported(zoho, playbook_m):
    """The Zoho export's two date formats are both parsed as declared and listed in the report."""
    q = quality_report(zoho, playbook_m, lang="en")
    assert q.summary.loc["date_formats", "status"] == "found"
    assert set(zoho.date_formats["format"]) == {"%d %b, %Y %H:%M:%S", "%Y-%m-%d %H:%M:%S"}
    assert zoho.problems == ()


def test_zoho_tasks_modified_before_created(zoho, playbook_m):
    """Data quality: the Zoho tasks modified before they were created are negative durations."""
    q = quality_report(zoho, playbook_m, lang="en")
    assert "2,978 records modified before they were created" in q.summary.loc["negative_duration", "message"]


def test_strict_mode_raises_every_row_problem(tmp_path):
    """With strict=True the row problems are raised together instead of returned."""
    src = tmp_path / "deals.csv"
    src.write_text('deal_id,amount\nD-1,x\nD-2,y\n', encoding="utf-8")
    with pytest.raises(ContentError) as err:
        read_export(src, mapping(tmp_path, CASE_MAPPING), strict=True)
    assert [p.line for p in err.value.problems if p.line > 1] == [2, 3]


def test_large_files_show_a_progress_bar(tmp_path, capsys):
    """Reading a large file with progress=True draws a progress bar on stderr."""
    src = tmp_path / "deals.csv"
    row = 'D-{i},"12,500",2024-03-05\n'
    src.write_text("deal_id,amount,created_at\n" + "".join(row.format(i=i) for i in range(200_000)), encoding="utf-8")
    body = CASE_MAPPING.replace("timezone: UTC}", "timezone: UTC, thousands: ','}")
    data = read_export(src, mapping(tmp_path, body), progress=True)
    assert len(data.deals) == 200_000 and data.deals["amount"].iloc[-1] == 12500.0
    assert "deals.csv" in capsys.readouterr().err


def test_folder_of_exports_and_semicolon_file_get_a_fix(tmp_path, maven):
    """The folder above the exports names its sub-folders; a semicolon-separated file is read with its
    delimiter detected, and, when the mapping declares commas, told to declare ';' (not "fix the mapping")."""
    from sopcoach.errors import ContentError
    with pytest.raises(ContentError) as exc:
        read_export(CRM)
    text = str(exc.value)
    assert "maven_crm_sales_opportunities" in text and "give one of them" in text and ":0:0" not in text
    (tmp_path / "sales_pipeline.csv").write_text(
        (MAVEN / "sales_pipeline.csv").read_text(encoding="utf-8").replace(",", ";"), encoding="utf-8")
    data = read_export(tmp_path / "sales_pipeline.csv", "maven")
    assert data.deals["amount"].sum() == maven.deals["amount"].sum() and len(data.deals) == len(maven.deals)
    assert "delimiter ';' (detected)" in data.files[0].describe("en")
    declared = mapping(tmp_path, builtin_mapping_path("maven").read_text(encoding="utf-8").replace(
        "  encoding: auto\n", "  encoding: auto\n  delimiter: ','\n"), "maven_commas.yaml")
    with pytest.raises(ContentError) as exc:
        read_export(tmp_path / "sales_pipeline.csv", declared)
    text = str(exc.value)
    assert "separate fields with ';', not ','" in text and "source.delimiter: ';'" in text
    assert "sales_pipeline.csv:1: deal_id:" in text


def test_two_exports_at_once_are_refused_by_name():
    """Maven's and Salesforce's folders together: not a column error of one mapping, but both
    exports named and one at a time asked for."""
    from sopcoach.errors import ContentError
    with pytest.raises(ContentError) as exc:
        read_export([MAVEN, CRM / "salesforce_devorg_export_earthfink"])
    text = str(exc.value)
    assert "different exports" in text and "maven: sales_pipeline.csv" in text and "salesforce: Opportunity.csv" in text


def test_another_export_beside_an_explicit_source_and_a_file_given_twice(capsys):
    """With --source maven, Salesforce's Opportunity.csv is refused (not silently dropped); Zoho's
    Calls.csv given again beside its folder is read once (same duplicates); files no table reads
    are named in ``skipped``."""
    from sopcoach.errors import ContentError
    salesforce, zoho = CRM / "salesforce_devorg_export_earthfink", CRM / "zoho_crm_export_sample"
    with pytest.raises(ContentError, match="Opportunity.csv: these files hold salesforce deals, not maven ones"):
        read_export([MAVEN, salesforce], "maven")
    with pytest.raises(ContentError, match="not maven ones: give --source salesforce for them"):
        read_export(salesforce, "maven")  # the message names the fix, not only the mismatch
    once, twice = read_export(zoho, "zoho"), read_export([zoho, zoho / "Calls.csv"], "zoho")
    assert len(twice.events) == len(once.events)
    assert twice.events["duplicate_of"].notna().sum() == once.events["duplicate_of"].notna().sum() > 0
    assert "Campaigns.csv" in once.skipped and "Calls.csv" not in once.skipped
    assert read_export(MAVEN, "maven").skipped == ("data_dictionary.csv",)
