"""The reports' pages (trainer/core/pages.py): one file that a browser
opens without a network, its pictures drawn, and nothing it was given able
to become markup (model names and card fields are untrusted)."""
import browser

from trainer.core.pages import Page, figure


def test_a_page_is_one_file_whose_pictures_show_and_whose_text_is_text(tmp_path):
    fig, ax = figure()
    ax.plot([1, 2, 3], [0.3, 0.1, 0.2])
    page = Page('pilot-<script>alert("x")</script>')
    page.figure(fig, "loss per epoch")
    path = page.write(str(tmp_path / "report.html"), "base.html.j2")
    source = open(path, encoding="utf-8").read()
    assert "http://" not in source and "https://" not in source      # nothing to fetch
    assert '<script>alert("x")</script>' not in source
    html = browser.rendered(path)
    assert browser.pictures_shown(html) == 1
    assert 'pilot-<script>alert("x")</script>' in browser.text(html)   # shown, as text
