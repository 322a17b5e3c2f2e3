"""How the browser phase finds Chromium, and what it says when there is none."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import test_book_in_browser as browser_test


def test_system_chromium_first(monkeypatch):
    monkeypatch.setattr(browser_test.shutil, "which",
                        lambda name: "/usr/bin/chromium" if name == "chromium" else None)
    fake = SimpleNamespace(chromium=SimpleNamespace(executable_path="/nowhere/chrome"))
    assert browser_test.chromium_path(fake) == "/usr/bin/chromium"


def test_playwright_download_when_no_system_chromium(monkeypatch, tmp_path):
    monkeypatch.setattr(browser_test.shutil, "which", lambda name: None)
    chrome = tmp_path / "chrome"
    chrome.write_text("")
    fake = SimpleNamespace(chromium=SimpleNamespace(executable_path=str(chrome)))
    assert browser_test.chromium_path(fake) == str(chrome)


def test_no_browser_fails_with_both_install_lines(monkeypatch):
    monkeypatch.setattr(browser_test.shutil, "which", lambda name: None)
    fake = SimpleNamespace(chromium=SimpleNamespace(executable_path="/nowhere/chrome"))
    with pytest.raises(pytest.fail.Exception) as info:
        browser_test.chromium_path(fake)
    message = str(info.value)
    assert "apt install chromium" in message
    assert ".venv/bin/playwright install chromium" in message
