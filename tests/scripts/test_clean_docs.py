"""scripts/corpus/clean_docs.py: what is kept as prose, what is dropped, and how documents are split."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "corpus", "clean_docs.py")
sys.path.insert(0, os.path.dirname(SCRIPT))
import clean_docs  # noqa: E402

PROSE = "This paragraph is ordinary English prose with enough words in it to be kept by the cleaner."

RST = f"""\
.. SPDX-License-Identifier: GPL-2.0

==================
The Title Of A Doc
==================

{PROSE}
It goes on over a second line, which joins the first.

Run this command::

    $ make menuconfig
    and this indented literal block is code, not prose at all here

.. code-block:: c

   int main(void) {{ return 0; }} /* a code block that is long enough */

.. note::

   A note's body is prose, so this indented paragraph of many words is kept as well.

+-------+-------+
| table | cells |
+-------+-------+

- A list item is a paragraph of its own, with **bold** and ``literal`` markup and a
  :ref:`role <target>` and a `link <https://example.org>`_ removed from it.
"""

POD = """\
=head1 NAME

The Digest-E<gt>new() function did not C<< $a E<lt>=E<gt> $b >> sanitize I<its input> before using it.

    my $verbatim = "code that is indented and therefore dropped from the corpus";

=cut

sub code_after_cut { return "never prose even with many words in the line" }
"""


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


class Paragraphs(unittest.TestCase):
    def test_rst_keeps_prose_and_drops_markup_code_and_tables(self):
        kept = [p for p in clean_docs.rst_paragraphs(RST.splitlines()) if clean_docs.keep_paragraph(p)]
        self.assertEqual(kept[0], PROSE + " It goes on over a second line, which joins the first.")
        self.assertIn("A note's body is prose, so this indented paragraph of many words is kept as well.", kept)
        self.assertIn("A list item is a paragraph of its own, with bold and literal markup and a role and a link "
                      "removed from it.", kept)
        text = "\n".join(kept)
        for dropped in ("make menuconfig", "int main", "table", "SPDX", "====", "Title"):
            self.assertNotIn(dropped, text)

    def test_pod_decodes_escapes_and_drops_commands_verbatim_and_code(self):
        kept = [p for p in clean_docs.pod_paragraphs(POD.splitlines()) if clean_docs.keep_paragraph(p)]
        self.assertEqual(kept, ["The Digest->new() function did not $a <=> $b sanitize its input before using it."])


class Corpus(unittest.TestCase):
    def test_documents_are_deduplicated_split_by_path_and_other_languages_left_out(self):
        with tempfile.TemporaryDirectory() as tmp:
            docs = os.path.join(tmp, "docs")
            os.makedirs(os.path.join(docs, "translations", "it_IT"))
            body = "\n\n".join(f"Paragraph number {i} says something different from every other paragraph here."
                               for i in range(20))
            for i in range(60):
                with open(os.path.join(docs, f"doc{i}.rst"), "w") as f:
                    f.write(f"{PROSE}\n\n{body.replace('number', f'number {i} and')}\n")
            with open(os.path.join(docs, "translations", "it_IT", "doc.rst"), "w") as f:
                f.write(body.replace("Paragraph", "Paragrafo") + "\n")
            out = os.path.join(tmp, "out")
            subprocess.run([sys.executable, SCRIPT, out, "rst:" + docs], check=True, capture_output=True)
            with open(os.path.join(out, "manifest.jsonl")) as f:
                manifest = [json.loads(line) for line in f]
            self.assertEqual(len(manifest), 60, "one document per source file, no translation")
            texts = [read(os.path.join(out, row["file"])) for row in manifest]
            self.assertEqual(sum(t.count(PROSE) for t in texts), 1, "a repeated paragraph is kept once")
            for row in manifest:
                self.assertEqual(row["file"].split("/")[0], clean_docs.split_of(row["source"]), "split by source path")
            self.assertGreater(sum(row["file"].startswith("train/") for row in manifest), 45)
            again = os.path.join(tmp, "again")
            subprocess.run([sys.executable, SCRIPT, again, "rst:" + docs], check=True, capture_output=True)
            self.assertEqual(read(os.path.join(again, "manifest.jsonl")), read(os.path.join(out, "manifest.jsonl")),
                             "deterministic")


if __name__ == "__main__":
    unittest.main()
