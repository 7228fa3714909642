"""docs/DEVELOPING.md's settings table is generated from stage1.core.settings and never stale."""

from stage1.core.settings import FIELD_GROUP, env_name
from stage1_local import settings_doc


def test_the_settings_table_in_developing_md_is_current():
    doc = settings_doc.DOC.read_text()
    assert settings_doc.render(doc) == doc, "run: python -m stage1_local.settings_doc"


def test_the_table_lists_every_setting_with_its_group():
    table = settings_doc.table()
    for field, group in FIELD_GROUP.items():
        assert f"| `{env_name(field)}` | {group} |" in table
    assert "| `STAGE1_PG_DSN` | postgres | `postgresql://stage1@127.0.0.1:55432/stage1` | yes |" in table
