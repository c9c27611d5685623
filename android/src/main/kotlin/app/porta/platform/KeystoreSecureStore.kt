package app.porta.platform

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.util.Base64
import app.porta.SecureStore
import app.porta.SecureStoreException
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * Porta's secrets encrypted with an AES-256-GCM key that lives in the Android Keystore (in
 * hardware where the phone has it) and never leaves it; the ciphertexts sit in private
 * SharedPreferences excluded from backup (see the app's backup rules).
 */
class KeystoreSecureStore(context: Context, private val alias: String = "app.porta.core") : SecureStore {
    private val prefs = context.getSharedPreferences("app.porta.secure", Context.MODE_PRIVATE)

    private fun key(): SecretKey {
        val keyStore = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
        (keyStore.getKey(alias, null) as? SecretKey)?.let { return it }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
        generator.init(
            KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .build(),
        )
        return generator.generateKey()
    }

    override fun get(key: String): ByteArray? = guard {
        val stored = prefs.getString(key, null) ?: return@guard null
        val bytes = Base64.decode(stored, Base64.NO_WRAP)
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(128, bytes, 0, 12))
        cipher.updateAAD(key.toByteArray())
        cipher.doFinal(bytes, 12, bytes.size - 12)
    }

    override fun set(key: String, value: ByteArray) = guard {
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, key())
        cipher.updateAAD(key.toByteArray())
        val sealed = cipher.iv + cipher.doFinal(value)
        check(prefs.edit().putString(key, Base64.encodeToString(sealed, Base64.NO_WRAP)).commit()) { "write failed" }
    }

    override fun delete(key: String) = guard {
        check(prefs.edit().remove(key).commit()) { "write failed" }
    }

    private inline fun <T> guard(block: () -> T): T =
        try {
            block()
        } catch (e: Exception) {
            // The reason names the failure class only, never the stored value.
            throw SecureStoreException.Unavailable(e.javaClass.simpleName)
        }
}
