from mmalign.cli import main


def test_unknown_benchmark_lists_the_valid_names(capsys):
    assert main(["bench", "nope"]) == 2
    err = capsys.readouterr().err
    assert "adl_stage" in err and "ot_solver" in err and "'nope'" in err
