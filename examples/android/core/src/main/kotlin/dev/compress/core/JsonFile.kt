package dev.compress.core

import com.google.gson.JsonArray
import com.google.gson.JsonElement
import com.google.gson.JsonObject
import com.google.gson.JsonParseException
import com.google.gson.JsonParser
import java.io.File

/**
 * A JSON object read from [source] with typed getters that fail with a [CompressError] naming the
 * file and the key, so a malformed bundle file is refused with one clear message.
 */
class JsonFields(val json: JsonObject, val source: String, private val where: String = "") {

    private fun place(key: String) = if (where.isEmpty()) key else "$where.$key"

    private fun fail(key: String, problem: String): Nothing = throw CompressError("$source: ${place(key)} $problem")

    fun has(key: String): Boolean = json.has(key) && !json.get(key).isJsonNull

    private fun element(key: String): JsonElement {
        val value = json.get(key)
        if (value == null || value.isJsonNull) fail(key, "is missing")
        return value
    }

    fun string(key: String): String {
        val value = element(key)
        if (!value.isJsonPrimitive || !value.asJsonPrimitive.isString) fail(key, "is not a string")
        return value.asString
    }

    fun stringOrNull(key: String): String? = if (has(key)) string(key) else null

    fun int(key: String): Int {
        val value = element(key)
        if (!value.isJsonPrimitive || !value.asJsonPrimitive.isNumber) fail(key, "is not a number")
        val number = value.asDouble
        if (number != Math.floor(number) || number < Int.MIN_VALUE || number > Int.MAX_VALUE) fail(key, "is not an integer")
        return number.toInt()
    }

    fun long(key: String): Long {
        val value = element(key)
        if (!value.isJsonPrimitive || !value.asJsonPrimitive.isNumber) fail(key, "is not a number")
        return value.asLong
    }

    fun double(key: String): Double {
        val value = element(key)
        if (!value.isJsonPrimitive || !value.asJsonPrimitive.isNumber) fail(key, "is not a number")
        return value.asDouble
    }

    fun boolean(key: String): Boolean {
        val value = element(key)
        if (!value.isJsonPrimitive || !value.asJsonPrimitive.isBoolean) fail(key, "is not true or false")
        return value.asBoolean
    }

    fun obj(key: String): JsonFields {
        val value = element(key)
        if (!value.isJsonObject) fail(key, "is not an object")
        return JsonFields(value.asJsonObject, source, place(key))
    }

    fun array(key: String): JsonArray {
        val value = element(key)
        if (!value.isJsonArray) fail(key, "is not a list")
        return value.asJsonArray
    }

    fun objects(key: String): List<JsonFields> = array(key).mapIndexed { i, item ->
        if (!item.isJsonObject) fail("$key[$i]", "is not an object")
        JsonFields(item.asJsonObject, source, place("$key[$i]"))
    }

    fun strings(key: String): List<String> = array(key).mapIndexed { i, item ->
        if (!item.isJsonPrimitive || !item.asJsonPrimitive.isString) fail("$key[$i]", "is not a string")
        item.asString
    }

    fun floats(key: String): FloatArray {
        val items = array(key)
        return FloatArray(items.size()) { i ->
            val item = items[i]
            if (!item.isJsonPrimitive || !item.asJsonPrimitive.isNumber) fail("$key[$i]", "is not a number")
            item.asFloat
        }
    }

    fun ints(key: String): IntArray {
        val items = array(key)
        return IntArray(items.size()) { i ->
            val item = items[i]
            if (!item.isJsonPrimitive || !item.asJsonPrimitive.isNumber) fail("$key[$i]", "is not a number")
            item.asInt
        }
    }

    /** A list of equal-length number rows, as a row-major matrix. */
    fun matrix(key: String): Pair<Int, FloatArray> {
        val rows = array(key)
        if (rows.size() == 0) return 0 to FloatArray(0)
        val width = rows[0].let { if (it.isJsonArray) it.asJsonArray.size() else fail("$key[0]", "is not a list") }
        val values = FloatArray(rows.size() * width)
        rows.forEachIndexed { r, row ->
            if (!row.isJsonArray || row.asJsonArray.size() != width) fail("$key[$r]", "is not a list of $width numbers")
            row.asJsonArray.forEachIndexed { c, item ->
                if (!item.isJsonPrimitive || !item.asJsonPrimitive.isNumber) fail("$key[$r][$c]", "is not a number")
                values[r * width + c] = item.asFloat
            }
        }
        return width to values
    }

    companion object {
        /** Parse [file] as a JSON object, or fail naming the file. */
        fun read(file: File): JsonFields {
            if (!file.isFile) throw CompressError("$file: missing")
            val text = try {
                file.readText(Charsets.UTF_8)
            } catch (e: java.io.IOException) {
                throw CompressError("$file: cannot be read (${e.message})", e)
            }
            return parse(text, file.path)
        }

        fun parse(text: String, source: String): JsonFields {
            val element = try {
                JsonParser.parseString(text)
            } catch (e: JsonParseException) {
                throw CompressError("$source: not valid JSON (${e.message})", e)
            }
            if (!element.isJsonObject) throw CompressError("$source: not a JSON object")
            return JsonFields(element.asJsonObject, source)
        }
    }
}
