package app.porta.platform

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File

/**
 * Every class the library compiles is called from native code (droidplug's through JNI, the bindings
 * and app.porta.platform through JNA callbacks), so an app's R8 must keep all of them: each one must
 * match a `-keep class` rule of android/consumer-rules.pro. This catches a btleplug upgrade bringing a
 * Java package the rules do not name. A plain JUnit test: it reads files only.
 */
class ConsumerRulesTest {
    @Test
    fun everyCompiledClassIsKept() {
        val rules = File("../consumer-rules.pro").readLines()
            .mapNotNull { Regex("""^-keep class ([\w.]+)\.\*\* \{ \*; \}""").find(it.trim())?.groupValues?.get(1) }
        assertTrue("no -keep rules found", rules.isNotEmpty())
        val classes = File("target/classes").walk()
            .filter { it.isFile && it.extension == "class" }
            .map { it.relativeTo(File("target/classes")).path.removeSuffix(".class").replace(File.separatorChar, '.') }
            .toList()
        assertTrue("droidplug's classes are not compiled", classes.any { it.startsWith("com.nonpolynomial.btleplug.") })
        assertTrue("jni-utils' classes are not compiled", classes.any { it.startsWith("io.github.gedgygedgy.rust.") })
        val unkept = classes.filter { name -> rules.none { name.startsWith("$it.") } }
        assertEquals(emptyList<String>(), unkept)
    }
}
