"""``scribbleseg eval --mode slide``: tiles covering each image score exactly like whole mode, the results
say the images were tiled, and bad tile options are one error line (exit 2)."""

from __future__ import annotations

import json

from test_cli_eval import invoke, run  # noqa: F401  (the module's checkpoint + data set fixture)


def test_eval_slide_mode_with_covering_tiles_scores_like_whole_mode(run, tmp_path) -> None:  # noqa: F811
    results = {}
    for mode, extra in (("whole", []), ("slide", ["--tile", "32", "--blend", "uniform"])):
        out = tmp_path / f"{mode}.json"
        result = invoke("eval", run["config"], "--checkpoint", run["checkpoint"], "--classes", "threshold:5",
                        "--out", out, "--device", "cpu", "--mode", mode, *extra)
        assert result.exit_code == 0, result.output
        results[mode] = json.loads(out.read_text())["results"]
    assert set(results["slide"]) == set(results["whole"]) and "local" in results["slide"]
    for head, scored in results["slide"].items():
        assert scored["confusion"] == results["whole"][head]["confusion"], head
    assert any("2 image(s) predicted tile by tile" in note for note in results["slide"]["basic"]["notes"])


def test_eval_bad_tile_options_exit_2(run) -> None:  # noqa: F811
    result = invoke("eval", run["config"], "--checkpoint", run["checkpoint"], "--tile", "64", "--stride", "100")
    assert result.exit_code == 2 and "stride 100 is larger than the tile 64" in result.output, result.output
