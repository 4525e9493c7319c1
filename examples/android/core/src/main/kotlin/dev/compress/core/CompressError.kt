package dev.compress.core

/** A bundle, file or input the core refuses; the message names the file and the problem. */
class CompressError(message: String, cause: Throwable? = null) : Exception(message, cause)
