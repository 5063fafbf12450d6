"""The prover's results as tables that open their rows, at 80x24 with Pilot: the real prover's
modules -> a module's goals (each prover's outcome and seconds, the model's accepted lines) ->
one goal in full; acorn eval's policies -> a policy's buckets (failures, the searches acorn named
as failed, its summary lines). The reports are what `ProveReport.to_dict()` and
`JudgeReport.to_dict()` give, built here (the flows with a stand-in acorn are in
test_tui_screens.py and test_tui_scorer.py)."""

from __future__ import annotations

from textual.app import App
from textual.widgets import DataTable, Static

from tactics_core.acorn import eval_judge, generative_judge as gj
from tactics_tui.screens.dialogs import ResultDialog, TextDialog, judge_result_dialog, prove_result_dialog

SIZE = (80, 24)


class Host(App):
    CSS_PATH = "../../tactics_tui/app.tcss"

    def __init__(self, dialog) -> None:
        super().__init__()
        self.dialog = dialog

    def on_mount(self) -> None:
        self.push_screen(self.dialog)


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def rows_of(app) -> list[list[str]]:
    table = app.screen.query_one("#result-table", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def prove_report() -> gj.ProveReport:
    model = gj.ProverResult("model", [
        gj.ModuleResult("nat.add", [
            gj.GoalResult("nat.add", "add_comm", 12, "proved", 0.42, ["induction n", "simp [add_succ]"]),
            gj.GoalResult("nat.add", "add_zero", 20, "proved", 0.01, []),
            gj.GoalResult("nat.add", "add_assoc", 31, "crashed", 1.5, None, "acorn panicked at src/kernel.rs:10: bad line"),
        ]),
        gj.ModuleResult("nat.mul", [gj.GoalResult("nat.mul", "mul_one", 5, "timeout", 5.0)]),
    ], search_seconds=5.0)
    saturation = gj.ProverResult("saturation", [
        gj.ModuleResult("nat.add", [
            gj.GoalResult("nat.add", "add_comm", 12, "timeout", 5.0),
            gj.GoalResult("nat.add", "add_zero", 20, "proved", 0.02, []),
            gj.GoalResult("nat.add", "add_assoc", 31, "proved", 0.3, ["x"]),
        ]),
        gj.ModuleResult("nat.mul", [gj.GoalResult("nat.mul", "mul_one", 5, "proved", 0.2, [])]),
    ], search_seconds=5.0)
    return gj.ProveReport("best_model.pt", None, "/bin/acorn", "/lib", 5.0, 1, [model, saturation], 12.0)


async def test_the_provers_modules_open_their_goals_and_a_goal_opens_in_full():
    report = prove_report()
    app = Host(prove_result_dialog(gj.report_text(report), report.to_dict()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        table = app.screen
        assert text_of(app, "#result-head").startswith("best_model.pt judged by /bin/acorn")
        assert rows_of(app) == [["nat.add", "3", "2 (1c)", "2", "0.21"], ["nat.mul", "1", "0", "1", "-"]]
        assert "model      proved 2/4" in text_of(app, "#result-foot") and "saturation proved 3/4" in text_of(app, "#result-foot")
        assert "model: 2 proved, 1 crashed" in text_of(app, "#result-details")
        assert app.screen.focused is app.screen.query_one("#result-table")
        await pilot.press("down")
        assert "model: 1 timeout" in text_of(app, "#result-details") and "the 1 goals of nat.mul" in text_of(app, "#result-details")
        await pilot.press("up", "enter")
        await pilot.pause(0.1)
        goals = app.screen
        assert goals is not table and isinstance(goals, ResultDialog)
        assert text_of(app, "#result-head") == "nat.add: 3 goals  ·  model proved 2/3  ·  saturation proved 2/3"
        assert rows_of(app) == [
            ["12", "add_comm", "proved", "0.42", "timeout", "5.00", "2"],
            ["20", "add_zero", "proved", "0.01", "proved", "0.02", "0"],
            ["31", "add_assoc", "crashed", "1.50", "proved", "0.30", "-"],
        ]
        details = text_of(app, "#result-details")
        assert details.splitlines() == [
            "nat.add:12 add_comm", "model: proved in 0.42 s, 2 accepted lines:", "    induction n", "    simp [add_succ]",
            "saturation: timeout in 5.00 s",
        ]
        await pilot.press("down")
        assert "model: proved in 0.01 s with no line (acorn's checker alone)" in text_of(app, "#result-details")
        await pilot.press("down")
        assert "model: crashed in 1.50 s\n    acorn panicked at src/kernel.rs:10: bad line" in text_of(app, "#result-details")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, TextDialog) and text_of(app, "#text-dialog-body").startswith("nat.add:31 add_assoc")
        await pilot.press("escape")
        assert app.screen is goals
        await pilot.press("escape")
        assert app.screen is table
        # Every line of the dialogs fits 80 columns: the table and its details are inside the dialog.
        assert app.screen.query_one("#result-table").region.right <= 80


def judge_report() -> eval_judge.JudgeReport:
    failed = [eval_judge.FailedSearch("src/nat/add.ac", 40 + i, f"goal_{i}", 0, "timeout", 1.0) for i in range(10)]
    model = eval_judge.PolicyFigures("scorer-a", "model", "/x/scorer-a.onnx", {
        91: eval_judge.BucketFigures(20, 15, 120.5, {"timeout": 5}, 30.0, ["15/20 benchmark searches succeeded"], failed[:5]),
        92: eval_judge.BucketFigures(10, 10, 80.0, {}, 9.0, ["10/10 benchmark searches succeeded"], []),
    }, diff_to_baseline={91: -0.05, 92: 0.1})
    default = eval_judge.PolicyFigures("default", "default", None, {
        91: eval_judge.BucketFigures(20, 16, 100.0, {"timeout": 4}, 28.0, [], []),
        92: eval_judge.BucketFigures(10, 9, 70.0, {"exhaustion": 1}, 8.0, [], []),
    })
    return eval_judge.JudgeReport("/bin/acorn", "/lib", [91, 92], 1.0, None, None, True, [model, default], "default", 75.0)


async def test_acorn_evals_policies_open_their_buckets_with_the_failed_searches():
    report = judge_report()
    app = Host(judge_result_dialog(eval_judge.report_text(report), report.to_dict()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        table = app.screen
        assert text_of(app, "#result-head").startswith("acorn eval on buckets 91-92")
        assert rows_of(app) == [
            ["scorer-a", "30", "25", "83.3%", "107.0", "75-100%", "+2.5"],
            ["default", "30", "25", "83.3%", "90.0", "80-90%", "-"],
        ]
        assert "model /x/scorer-a.onnx\nfailures: 5 timeout\nenter: its 2 buckets" == text_of(app, "#result-details")
        assert text_of(app, "#result-foot").startswith("time 75 s")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert text_of(app, "#result-head") == "scorer-a: 25/30 searches proved (83.3%) on buckets 91-92"
        assert rows_of(app) == [["91", "20", "15", "75.0%", "120.5", "30.0", "-5.0"], ["92", "10", "10", "100.0%", "80.0", "9.0", "+10.0"]]
        details = text_of(app, "#result-details")
        assert details.startswith("failures: 5 timeout\n    src/nat/add.ac:40 goal_0 (timeout after 1 s)")
        assert "acorn: 15/20 benchmark searches succeeded" in details
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, TextDialog) and text_of(app, "#text-dialog-body").startswith("scorer-a, bucket 91\nfailures")
        await pilot.press("escape", "escape")
        assert app.screen is table
        await pilot.press("down", "enter")
        await pilot.pause(0.1)
        assert rows_of(app) == [["91", "20", "16", "80.0%", "100.0", "28.0"], ["92", "10", "9", "90.0%", "70.0", "8.0"]]
        assert text_of(app, "#result-details").startswith("failures: 4 timeout")  # no vs column: it is the baseline


def test_the_judges_report_keeps_the_failed_searches_per_bucket():
    data = judge_report().to_dict()
    failed = data["policies"][0]["buckets"]["91"]["failed"]
    assert len(failed) == 5 and failed[0] == {"file": "src/nat/add.ac", "line": 40, "goal": "goal_0", "skip": 0,
                                              "reason": "timeout", "seconds": 1.0}
