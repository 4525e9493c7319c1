package dev.compress.core

import java.io.File

/**
 * SentencePiece's Unigram encoder, read from the bundle's `tokenizer.json` (Hugging Face format),
 * reproducing `sentencepiece` id for id:
 * - the raw text is not normalised; each ASCII space becomes `▁` and one `▁` is prepended
 *   (nothing for the empty text);
 * - the best segmentation is SentencePiece's Viterbi over UTF-8 byte positions with float32 scores:
 *   a character no piece covers is an unknown piece scored `min score - 10`, and ties keep the
 *   candidate found first (the one starting earliest);
 * - control, unknown and byte pieces never match text; an unknown character becomes the
 *   `<0xXX>` pieces of its UTF-8 bytes when byte fallback is on;
 * - the row is `[bos] + first max_length-2 piece ids + [eos]`, padded with `pad_id`.
 */
class UnigramTokenizer(
    pieces: List<Pair<String, Float>>,
    private val unkId: Int,
    private val byteFallback: Boolean,
    private val rule: TextRule,
    specialIds: Set<Int>,
    userDefinedIds: Set<Int> = emptySet(),
) {
    private val trie = Trie()
    private val scores = FloatArray(pieces.size) { pieces[it].second }
    private val byteIds = IntArray(256) { -1 }
    private val unknownScore: Float
    private val userDefined = BooleanArray(pieces.size) { it in userDefinedIds }
    private val maxScore: Float

    val vocabSize = pieces.size

    init {
        // SentencePiece takes the lowest and highest score over normal pieces only; the highest
        // starts at FLT_MIN (the smallest positive float), as in its C++, so it is never below that
        var minScore = Float.MAX_VALUE
        var highest = java.lang.Float.MIN_NORMAL
        pieces.forEachIndexed { id, (piece, score) ->
            val byte = BYTE_PIECE.matchEntire(piece)
            when {
                byte != null && byteFallback -> byteIds[byte.groupValues[1].toInt(16)] = id
                id == unkId || id in specialIds -> Unit
                else -> {
                    trie.insert(piece.toByteArray(Charsets.UTF_8), id)
                    if (!userDefined[id]) {
                        if (score < minScore) minScore = score
                        if (score > highest) highest = score
                    }
                }
            }
        }
        if (minScore == Float.MAX_VALUE) {
            minScore = 0.0f
            highest = 0.0f
        }
        unknownScore = minScore - UNKNOWN_PENALTY
        maxScore = highest
    }

    /** The piece ids of [text], without bos, eos or padding. */
    fun pieceIds(text: String): IntArray {
        if (text.isEmpty()) return IntArray(0)
        val normalized = (MARKER + text.replace(" ", MARKER)).toByteArray(Charsets.UTF_8)
        val size = normalized.size
        val bestScore = FloatArray(size + 1)
        val startsAt = IntArray(size + 1) { -1 }
        val bestId = IntArray(size + 1) { -1 }
        var start = 0
        while (start < size) {
            val scoreHere = bestScore[start]
            val charLength = minOf(utf8Length(normalized[start]), size - start)
            var hasSingle = false
            trie.forEachPrefix(normalized, start) { end, id ->
                // a user-defined piece always wins: SentencePiece scores it length x max score - 0.1;
                // its C++ adds every piece score to the path score in double and stores the sum as float
                val score = if (userDefined[id]) ((end - start) * maxScore).toDouble() - 0.1 else scores[id].toDouble()
                val candidate = score + scoreHere
                if (startsAt[end] == -1 || candidate > bestScore[end]) {
                    bestScore[end] = candidate.toFloat()
                    startsAt[end] = start
                    bestId[end] = id
                }
                if (end - start == charLength) hasSingle = true
            }
            if (!hasSingle) {
                val end = start + charLength
                val candidate = unknownScore + scoreHere
                if (startsAt[end] == -1 || candidate > bestScore[end]) {
                    bestScore[end] = candidate
                    startsAt[end] = start
                    bestId[end] = unkId
                }
            }
            start += charLength
        }
        val reversed = ArrayList<Int>()
        var end = size
        while (end > 0) {
            val begin = startsAt[end]
            val id = bestId[end]
            if (id == unkId && byteFallback && (begin until end).all { byteIds[normalized[it].toInt() and 0xff] >= 0 }) {
                for (i in end - 1 downTo begin) reversed += byteIds[normalized[i].toInt() and 0xff]
            } else {
                reversed += id
            }
            end = begin
        }
        return reversed.asReversed().toIntArray()
    }

    /** The model input row of [text]: `max_length` ids, bos, pieces, eos, pad. */
    fun encode(text: String): LongArray {
        val length = rule.maxLength
        val pieces = pieceIds(text)
        val kept = minOf(pieces.size, length - 2)
        val row = LongArray(length) { rule.padId.toLong() }
        row[0] = rule.bosId.toLong()
        for (i in 0 until kept) row[i + 1] = pieces[i].toLong()
        row[kept + 1] = rule.eosId.toLong()
        return row
    }

    private class Trie {
        private class Node {
            val children = HashMap<Byte, Node>(4)
            var id = -1
        }

        private val root = Node()

        fun insert(key: ByteArray, id: Int) {
            var node = root
            for (b in key) node = node.children.getOrPut(b) { Node() }
            if (node.id == -1) node.id = id
        }

        /** Calls [action] with (end, id) for every piece that starts at [start], shortest first. */
        inline fun forEachPrefix(text: ByteArray, start: Int, action: (Int, Int) -> Unit) {
            var node = root
            var position = start
            while (position < text.size) {
                node = node.children[text[position]] ?: return
                position++
                if (node.id >= 0) action(position, node.id)
            }
        }
    }

    companion object {
        const val MARKER = "\u2581"

        /** SentencePiece's penalty (kUnkPenalty) below the lowest piece score for an unknown piece. */
        const val UNKNOWN_PENALTY = 10.0f

        private val BYTE_PIECE = Regex("<0x([0-9A-F]{2})>")

        private fun utf8Length(lead: Byte): Int {
            val b = lead.toInt() and 0xff
            return when {
                b < 0x80 -> 1
                b >= 0xf0 -> 4
                b >= 0xe0 -> 3
                b >= 0xc0 -> 2
                else -> 1
            }
        }

        /** Read a Hugging Face `tokenizer.json` holding a Unigram model, and check it is laid out as [rule] says. */
        fun read(file: File, rule: TextRule): UnigramTokenizer {
            val json = JsonFields.read(file)
            val model = json.obj("model")
            if (model.string("type") != "Unigram") throw CompressError("${file}: model.type is '${model.string("type")}', not 'Unigram'")
            checkPipeline(json, file)
            val vocab = model.array("vocab")
            val pieces = vocab.mapIndexed { i, entry ->
                val pair = entry.takeIf { it.isJsonArray }?.asJsonArray
                if (pair == null || pair.size() != 2 || !pair[0].isJsonPrimitive || !pair[1].isJsonPrimitive) {
                    throw CompressError("$file: model.vocab[$i] is not a [piece, score] pair")
                }
                pair[0].asString to pair[1].asDouble.toFloat()
            }
            if (pieces.size != rule.vocabSize) {
                throw CompressError("$file: vocabulary of ${pieces.size} pieces, ${BundleManifest.MANIFEST} says ${rule.vocabSize}")
            }
            val unkId = if (model.has("unk_id")) model.int("unk_id") else rule.unkId
            if (unkId != rule.unkId) throw CompressError("$file: unk_id $unkId, ${BundleManifest.MANIFEST} says ${rule.unkId}")
            for ((name, id) in listOf("pad_id" to rule.padId, "bos_id" to rule.bosId, "eos_id" to rule.eosId, "unk_id" to rule.unkId)) {
                if (id !in pieces.indices) throw CompressError("$file: text.$name $id is outside the vocabulary of ${pieces.size}")
            }
            if (rule.maxLength < 2) throw CompressError("${BundleManifest.MANIFEST}: text.max_length ${rule.maxLength} leaves no room for bos and eos")
            // added tokens: special ones are control pieces (never matched in text), the others user-defined
            val special = mutableSetOf(rule.padId, rule.bosId, rule.eosId)
            val userDefined = mutableSetOf<Int>()
            if (json.has("added_tokens")) {
                for (token in json.objects("added_tokens")) {
                    val id = token.int("id")
                    if (id !in pieces.indices) throw CompressError("$file: added token id $id is outside the vocabulary")
                    if (token.has("special") && token.boolean("special")) special += id else userDefined += id
                }
            }
            val byteFallback = model.has("byte_fallback") && model.boolean("byte_fallback")
            return UnigramTokenizer(pieces, unkId, byteFallback, rule, special, userDefined)
        }

        /**
         * Accept only pipelines that amount to SentencePiece's identity rule: spaces to `▁` and one
         * `▁` prepended. Anything else (Unicode normalisation, lowercasing, splitting on punctuation)
         * would change the ids, so such a file is refused rather than half followed.
         */
        private fun checkPipeline(json: JsonFields, file: File) {
            val steps = mutableListOf<JsonFields>()
            fun collect(key: String) {
                if (!json.has(key)) return
                val step = json.obj(key)
                val type = step.string("type")
                if (type == "Sequence") {
                    val inner = if (step.has("normalizers")) "normalizers" else "pretokenizers"
                    steps += step.objects(inner)
                } else {
                    steps += step
                }
            }
            collect("normalizer")
            collect("pre_tokenizer")
            var prepends = false
            var replacesSpaces = false
            for (step in steps) {
                val type = step.string("type")
                val supported = when (type) {
                    "Metaspace" -> (step.string("replacement") == MARKER &&
                        (step.stringOrNull("prepend_scheme") ?: "always").let { it == "always" || it == "first" })
                        .also { if (it) { prepends = true; replacesSpaces = true } }
                    "Prepend" -> (step.string("prepend") == MARKER).also { if (it) prepends = true }
                    "Replace" -> (step.obj("pattern").stringOrNull("String") == " " && step.string("content") == MARKER)
                        .also { if (it) replacesSpaces = true }
                    "Precompiled" -> step.stringOrNull("precompiled_charsmap").isNullOrEmpty()
                    else -> false
                }
                if (!supported) {
                    throw CompressError("$file: ${step.json.get("type")} step ${step.json} is not SentencePiece's identity rule; this tokenizer cannot follow it")
                }
            }
            if (!prepends || !replacesSpaces) {
                throw CompressError("$file: the normalizer does not " + (if (!prepends) "prepend $MARKER" else "turn spaces into $MARKER") + ", as SentencePiece's identity rule does")
            }
        }
    }
}
