import pytest

from onestop.models.reference import ReferenceError, load_reference

AGENCIES = "code,name,level,parent,head_name,head_email,centre\nC,Centre,province,,A,a@x.vn,C\nS,Dept,province,,B,b@x.vn,C\n"
PROCEDURES = (
    "code,name,field,level,limit,limit_unit,same_day_cutoff,fee_bearing,paper_result,full_online_eligible\n"
    "P1,Khai sinh,Hộ tịch,commune,5,working_days,,true,true,false\n"
)


def write(folder, **files):
    for name, text in files.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def test_a_complete_directory_loads(tmp_path):
    write(tmp_path, agencies=AGENCIES, procedures=PROCEDURES,
          steps="procedure,step,unit,budget_hours\nP1,2,S,10\nP1,1,C,2.5\n",
          calendar="date,kind,note\n2026-03-04,day_off,Nghỉ\n2026-03-07,working_day,Làm bù\n",
          working_hours="centre,periods,paper_handoff_cutoff\nC,07:00-11:30 13:30-17:00,16:00\n",
          targets="metric,target\ne_transfer_share,0.8\n")
    reference = load_reference(tmp_path)
    procedure = reference.procedures["P1"]
    assert procedure.limit == 5 and procedure.fee_bearing is True
    assert procedure.full_online_eligible is False and procedure.same_day_cutoff == 15 * 3600
    assert [(s.unit, s.budget_seconds) for s in procedure.steps] == [("C", 9000), ("S", 36000)]
    assert reference.working_hours["C"] == ((25200, 41400), (48600, 61200))
    assert reference.handoff_cutoff("C") == 16 * 3600
    assert reference.handoff_cutoff("S") == 15 * 3600  # the default
    assert reference.targets == {"e_transfer_share": 0.8}
    assert len(reference.days_off) == 1 and len(reference.working_days) == 1


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"procedures": PROCEDURES.replace("5,working_days", "five,working_days")},
         "procedures.csv, line 2, column 'limit': expected a number, got 'five'"),
        ({"procedures": PROCEDURES.replace("working_days", "weeks")},
         "procedures.csv, line 2, column 'limit_unit': expected one of"),
        ({"procedures": PROCEDURES.replace("true,true", "yes,true")},
         "procedures.csv, line 2, column 'fee_bearing': expected true, false or empty, got 'yes'"),
        ({"procedures": PROCEDURES + "P1,Again,x,commune,1,same_day,,,,\n"},
         "procedures.csv, line 3, column 'code': duplicate code 'P1'"),
        ({"agencies": AGENCIES + "X,Lost,commune,,,,NOWHERE\n"},
         "agencies.csv, line 4, column 'centre': no agency with code 'NOWHERE'"),
        ({"agencies": AGENCIES.replace("code,name", "kode,name")},
         "agencies.csv, line 1: missing column(s) code"),
        ({"calendar": "date,kind,note\n2026-02-30,day_off,\n"},
         "calendar.csv, line 2, column 'date': expected a date as YYYY-MM-DD, got '2026-02-30'"),
        ({"working_hours": "centre,periods\nC,13:00-11:00\n"},
         "working_hours.csv, line 2, column 'periods': period '13:00-11:00' ends before it starts"),
        ({"working_hours": "centre,periods,paper_handoff_cutoff\nC,07:30-17:00,3pm\n"},
         "working_hours.csv, line 2, column 'paper_handoff_cutoff': expected a time as HH:MM"),
        ({"targets": "metric,target\nhappiness,1\n"},
         "targets.csv, line 2, column 'metric': unknown metric 'happiness'"),
        ({"steps": "procedure,step,unit,budget_hours\nP9,1,C,2\n"},
         "steps.csv, line 2, column 'procedure': no procedure with code 'P9'"),
    ],
)
def test_errors_name_file_line_and_column(tmp_path, files, message):
    write(tmp_path, **{"agencies": AGENCIES, "procedures": PROCEDURES, **files})
    with pytest.raises(ReferenceError) as error:
        load_reference(tmp_path)
    assert message in str(error.value)


def test_missing_directory_and_file(tmp_path):
    with pytest.raises(ReferenceError, match="does not exist"):
        load_reference(tmp_path / "nope")
    write(tmp_path, agencies=AGENCIES)
    with pytest.raises(ReferenceError, match="procedures.csv: cannot be read"):
        load_reference(tmp_path)
