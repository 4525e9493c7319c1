package dev.compress.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File
import java.nio.file.Files

class TokenizerTest {
    private val bundle = TestBundle.bundle
    private val tokenizer = bundle.tokenizer()
    private val rule = bundle.manifest.text

    @Test
    fun goldenTextsGiveTheGoldenIds() {
        val golden = bundle.golden()
        assertTrue("golden texts in both languages", golden.texts.map { it.lang }.toSet().containsAll(listOf("en", "zh")))
        for (text in golden.texts) assertArrayEquals("ids of '${text.text}'", text.ids, tokenizer.encode(text.text))
    }

    @Test
    fun theEmptyTextIsBosEosAndPadding() {
        val expected = LongArray(rule.maxLength) { rule.padId.toLong() }.also {
            it[0] = rule.bosId.toLong()
            it[1] = rule.eosId.toLong()
        }
        assertArrayEquals(expected, tokenizer.encode(""))
    }

    @Test
    fun aLongTextKeepsItsFirstPiecesAndEndsWithEos() {
        val text = "一个红色的大圆形在左边，".repeat(20)
        val pieces = tokenizer.pieceIds(text)
        assertTrue(pieces.size > rule.maxLength)
        val row = tokenizer.encode(text)
        assertEquals(rule.maxLength, row.size)
        assertEquals(rule.bosId.toLong(), row[0])
        assertEquals(rule.eosId.toLong(), row[rule.maxLength - 1])
        assertArrayEquals(pieces.take(rule.maxLength - 2).map(Int::toLong).toLongArray(), row.copyOfRange(1, rule.maxLength - 1))
    }

    @Test
    fun unseenCharactersBecomeTheirUtf8Bytes() {
        // U+1F9A9 (flamingo) is not a piece: its four UTF-8 bytes F0 9F A6 A9 come out as <0xXX> pieces
        val pieces = tokenizer.pieceIds("\uD83E\uDDA9")
        val json = JsonFields.read(bundle.file(rule.tokenizerJson)).obj("model").array("vocab")
        val spelled = pieces.map { json[it].asJsonArray[0].asString }
        assertEquals(listOf("<0xF0>", "<0x9F>", "<0xA6>", "<0xA9>"), spelled.takeLast(4))
        assertTrue(rule.unkId !in pieces)
    }

    @Test
    fun aTokenizerWithAnotherNormalisationIsRefused() {
        val copy = Files.createTempFile("tokenizer", ".json").toFile()
        val text = bundle.file(rule.tokenizerJson).readText()
        val json = com.google.gson.JsonParser.parseString(text).asJsonObject
        json.add("normalizer", com.google.gson.JsonParser.parseString("{\"type\": \"NFKC\"}"))
        copy.writeText(json.toString())
        val message = TestBundle.refusal { UnigramTokenizer.read(copy, rule) }
        assertTrue(message, message.contains(copy.path) && message.contains("NFKC"))
    }

    @Test
    fun aTokenizerThatDoesNotPrependTheMarkerIsRefused() {
        val copy = Files.createTempFile("tokenizer", ".json").toFile()
        val json = com.google.gson.JsonParser.parseString(bundle.file(rule.tokenizerJson).readText()).asJsonObject
        json.add("normalizer", com.google.gson.JsonNull.INSTANCE)
        copy.writeText(json.toString())
        val message = TestBundle.refusal { UnigramTokenizer.read(copy, rule) }
        assertTrue(message, message.contains(copy.path) && message.contains("does not prepend"))
    }

    @Test
    fun aVocabularyOfAnotherSizeIsRefused() {
        val message = TestBundle.refusal { UnigramTokenizer.read(bundle.file(rule.tokenizerJson), rule.copy(vocabSize = rule.vocabSize + 1)) }
        assertTrue(message, message.contains("vocabulary of ${rule.vocabSize} pieces"))
    }

    @Test
    fun aMissingTokenizerFileIsNamed() {
        val missing = File(bundle.folder, "no-such-tokenizer.json")
        assertTrue(TestBundle.refusal { UnigramTokenizer.read(missing, rule) }.contains("no-such-tokenizer.json: missing"))
    }
}
