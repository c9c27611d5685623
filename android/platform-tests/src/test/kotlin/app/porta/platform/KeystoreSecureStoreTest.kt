package app.porta.platform

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import app.porta.SecureStoreException
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config
import java.io.InputStream
import java.io.OutputStream
import java.security.Key
import java.security.KeyStore
import java.security.KeyStoreSpi
import java.security.Provider
import java.security.SecureRandom
import java.security.Security
import java.security.cert.Certificate
import java.security.spec.AlgorithmParameterSpec
import java.util.Collections
import java.util.Date
import java.util.Enumeration
import javax.crypto.KeyGeneratorSpi
import javax.crypto.SecretKey
import javax.crypto.spec.SecretKeySpec

/**
 * KeystoreSecureStore on Robolectric. Robolectric has no Android Keystore (no "AndroidKeyStore"
 * JCA provider), so the key-holding part cannot run here: [withoutAKeystore] shows what the store
 * does then, and the other tests install [SoftwareKeystore], a software provider under that name,
 * so that the store's own code runs for real: AES-256-GCM through the JDK, the key name bound as
 * associated data, ciphertexts in the app's private SharedPreferences.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [31])
class KeystoreSecureStoreTest {
    private val context: Context get() = RuntimeEnvironment.getApplication()
    private val secret = "refresh-token-1234567890".toByteArray()

    @After
    fun removeSoftwareKeystore() {
        Security.removeProvider(SoftwareKeystore.NAME)
        SoftwareKeystore.keys.clear()
    }

    @Test
    fun withoutAKeystore() {
        val store = KeystoreSecureStore(context)
        try {
            store.set("session", secret)
            fail("stored a secret without a keystore")
        } catch (e: SecureStoreException.Unavailable) {
            // The reason names the failure, never the value.
            assertEquals("KeyStoreException", e.reason)
        }
        assertFalse(storedText().contains("refresh-token"))
    }

    @Test
    fun keepsASecretAcrossInstancesAndEncryptsIt() {
        Security.addProvider(SoftwareKeystore())
        KeystoreSecureStore(context).set("session", secret)
        // A new store (the app restarted) reads it back with the same Keystore key.
        assertArrayEquals(secret, KeystoreSecureStore(context).get("session"))
        val stored = storedText()
        assertTrue(stored.isNotEmpty())
        assertFalse(stored.contains("refresh-token"))
        assertEquals(setOf("app.porta.core"), SoftwareKeystore.keys.keys)
    }

    @Test
    fun deleteForgetsTheSecret() {
        Security.addProvider(SoftwareKeystore())
        val store = KeystoreSecureStore(context)
        store.set("session", secret)
        store.set("device-key", byteArrayOf(1, 2, 3))
        store.delete("session")
        assertNull(store.get("session"))
        assertArrayEquals(byteArrayOf(1, 2, 3), store.get("device-key"))
        assertNull(store.get("never-set"))
    }

    @Test
    fun aCiphertextMovedToAnotherNameDoesNotDecrypt() {
        Security.addProvider(SoftwareKeystore())
        KeystoreSecureStore(context).set("session", secret)
        val prefs = context.getSharedPreferences("app.porta.secure", Context.MODE_PRIVATE)
        prefs.edit().putString("device-key", prefs.getString("session", null)).commit()
        try {
            KeystoreSecureStore(context).get("device-key")
            fail("a ciphertext decrypted under another name")
        } catch (e: SecureStoreException.Unavailable) {
            assertEquals("AEADBadTagException", e.reason)
        }
    }

    @Test
    fun anotherAliasCannotReadTheSecret() {
        Security.addProvider(SoftwareKeystore())
        KeystoreSecureStore(context, alias = "first").set("session", secret)
        try {
            KeystoreSecureStore(context, alias = "second").get("session")
            fail("read with another key")
        } catch (e: SecureStoreException.Unavailable) {
            assertEquals("AEADBadTagException", e.reason)
        }
    }

    private fun storedText(): String =
        context.getSharedPreferences("app.porta.secure", Context.MODE_PRIVATE).all.values.joinToString()

    /**
     * A software stand-in for the Android Keystore's JCA provider: an "AndroidKeyStore" KeyStore
     * holding the AES keys its "AES" KeyGenerator makes from a [KeyGenParameterSpec].
     */
    class SoftwareKeystore : Provider(NAME, "1.0", "software stand-in for the Android Keystore (tests)") {
        init {
            put("KeyStore.$NAME", Store::class.java.name)
            put("KeyGenerator.AES", Generator::class.java.name)
        }

        companion object {
            const val NAME = "AndroidKeyStore"
            val keys: MutableMap<String, SecretKey> = Collections.synchronizedMap(mutableMapOf())
        }

        class Generator : KeyGeneratorSpi() {
            private var spec: KeyGenParameterSpec? = null
            private var random = SecureRandom()

            override fun engineInit(random: SecureRandom?) = throw UnsupportedOperationException("needs a KeyGenParameterSpec")

            override fun engineInit(params: AlgorithmParameterSpec?, random: SecureRandom?) {
                spec = params as KeyGenParameterSpec
                random?.let { this.random = it }
            }

            override fun engineInit(keysize: Int, random: SecureRandom?) = throw UnsupportedOperationException("needs a KeyGenParameterSpec")

            override fun engineGenerateKey(): SecretKey {
                val spec = checkNotNull(spec)
                val bytes = ByteArray(spec.keySize / 8).also(random::nextBytes)
                return SecretKeySpec(bytes, "AES").also { keys[spec.keystoreAlias] = it }
            }
        }

        class Store : KeyStoreSpi() {
            override fun engineGetKey(alias: String, password: CharArray?): Key? = keys[alias]
            override fun engineGetCertificateChain(alias: String): Array<Certificate>? = null
            override fun engineGetCertificate(alias: String): Certificate? = null
            override fun engineGetCreationDate(alias: String): Date? = null
            override fun engineSetKeyEntry(alias: String, key: Key, password: CharArray?, chain: Array<out Certificate>?) =
                throw UnsupportedOperationException()
            override fun engineSetKeyEntry(alias: String, key: ByteArray, chain: Array<out Certificate>?) =
                throw UnsupportedOperationException()
            override fun engineSetCertificateEntry(alias: String, cert: Certificate) = throw UnsupportedOperationException()
            override fun engineDeleteEntry(alias: String) {
                keys.remove(alias)
            }
            override fun engineAliases(): Enumeration<String> = Collections.enumeration(keys.keys.toList())
            override fun engineContainsAlias(alias: String): Boolean = alias in keys
            override fun engineSize(): Int = keys.size
            override fun engineIsKeyEntry(alias: String): Boolean = alias in keys
            override fun engineIsCertificateEntry(alias: String): Boolean = false
            override fun engineGetCertificateAlias(cert: Certificate): String? = null
            override fun engineStore(stream: OutputStream?, password: CharArray?) = Unit
            override fun engineLoad(stream: InputStream?, password: CharArray?) = Unit
            override fun engineLoad(param: KeyStore.LoadStoreParameter?) = Unit
        }
    }
}
